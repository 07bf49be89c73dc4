import trio

from actors import MessageChannel


async def main():
    work, hop1, hop2 = MessageChannel(), MessageChannel(), MessageChannel()
    port = work.port2

    work.port1.post_message("queued before the transfer")
    hop1.port1.post_message({"port": port}, transfer=[port])
    work.port1.post_message("sent while in flight")

    port.post_message("dropped: the old object is detached")  # silent no-op
    print(port, port.statistics().transferred)

    event = await hop1.port2.receive()
    moved = event.ports[0]
    print(moved is event.data["port"], moved.statistics().started)

    hop2.port1.post_message(None, transfer=[moved])  # a second hop
    work.port1.post_message("sent after the second hop")
    final = (await hop2.port2.receive()).ports[0]

    for _ in range(3):
        print((await final.receive()).data)

    final.post_message("reply")
    print((await work.port1.receive()).data)


trio.run(main)
