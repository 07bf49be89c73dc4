import trio

from actors import MessageChannel


async def main():
    carrier = MessageChannel()  # the channel the port travels on
    work = MessageChannel()  # work.port2 is the port that moves
    work.port1.post_message("queued before the move")

    print("work.port2 before the post:", work.port2)
    message = {"job": "resize", "reply_to": work.port2}
    carrier.port1.post_message(message, transfer=[work.port2])
    print("work.port2 after the post: ", work.port2)

    event = await carrier.port2.receive()
    port = event.ports[0]  # the new object standing for work.port2
    print("event.ports:", event.ports)
    print("data['reply_to'] is event.ports[0]:", event.data["reply_to"] is port)
    print((await port.receive()).data)  # the queue travelled with the port

    port.post_message("done")  # still entangled with work.port1
    print((await work.port1.receive()).data)


trio.run(main)
