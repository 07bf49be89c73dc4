import trio

from actors import ArrayBuffer, MessageChannel


async def main():
    carrier, work = MessageChannel(), MessageChannel()
    order = {"items": ["tea"]}
    blob = ArrayBuffer(b"\x01\x02\x03")

    message = {"order": order, "reply_to": work.port2, "blob": blob}
    carrier.port1.post_message(message, transfer=[work.port2, blob])
    order["items"].append("cake")  # too late: the clone was taken by post_message

    print("sender still has:", work.port2, blob)

    event = await carrier.port2.receive()
    print("receiver got:", event.data["order"], "| the same dict?", event.data["order"] is order)
    print("the port in the message is event.ports[0]:", event.data["reply_to"] is event.ports[0])
    print("the buffer arrived whole:", bytes(event.data["blob"]))

    event.ports[0].post_message("done")  # the moved port is still entangled with work.port1
    print("work.port1 got:", (await work.port1.receive()).data)


trio.run(main)
