import trio
import trio.testing

from actors import ArrayBuffer, MessageChannel


async def main():
    channel = MessageChannel()
    buf = ArrayBuffer(4)
    channel.port1.onclose = lambda event: print("port1 got", event.type)

    channel.port1.post_message("lost", transfer=[channel.port2, buf])  # no exception
    await trio.testing.wait_all_tasks_blocked()

    print(buf.detached, channel.port2, channel.port1.statistics().entangled)


trio.run(main)
