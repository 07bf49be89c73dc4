import trio

from actors import ArrayBuffer, MessageChannel


async def main():
    channel = MessageChannel()
    buf = ArrayBuffer(8)
    channel.port1.post_message(buf, transfer=[buf])
    print(buf.byte_length, buf.detached)  # 0 True: the storage moved

    event = await channel.port2.receive()
    print(event.data.byte_length)  # 8


trio.run(main)
