import trio

from actors import ArrayBuffer, MessageChannel


async def main():
    channel = MessageChannel()
    buf = ArrayBuffer(b"pixels")

    channel.port1.post_message(buf)  # not in the transfer list: copied
    print("after a copy:", buf, bytes(buf))

    channel.port1.post_message({"image": buf}, transfer=[buf])  # moved
    print("after a move:", buf, buf.byte_length, buf.detached)
    try:
        buf.view()
    except ValueError as exc:
        print("ValueError:", exc)

    copied = (await channel.port2.receive()).data
    moved = (await channel.port2.receive()).data["image"]
    print("received:", bytes(copied), bytes(moved))


trio.run(main)
