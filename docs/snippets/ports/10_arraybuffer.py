import trio

from actors import ArrayBuffer, DataCloneError, MessageChannel


async def main():
    channel = MessageChannel()
    buf = ArrayBuffer(4)

    view = buf.view()
    view[0] = 1
    try:
        channel.port1.post_message(buf, transfer=[buf])
    except DataCloneError as exc:
        print(exc)
    view.release()

    with buf.view() as v:  # released at the end of the block
        v[1] = 2
    channel.port1.post_message({"payload": buf}, transfer=[buf])
    print(buf, buf.byte_length)

    received = (await channel.port2.receive()).data["payload"]
    print(received, bytes(received))


trio.run(main)
