import trio
import trio.testing

from actors import ArrayBuffer, DataCloneError, MessageChannel


async def main():
    channel = MessageChannel()
    channel.port1.close()

    try:
        channel.port1.post_message({"callback": print})
    except DataCloneError as exc:
        print("still validated:", exc.path)

    buf, other = ArrayBuffer(2), MessageChannel()
    other.port1.onclose = lambda event: print("other.port1 got close")
    other.port1.start()
    channel.port1.post_message(buf, transfer=[buf, other.port2])  # no exception
    await trio.testing.wait_all_tasks_blocked()
    print(buf.detached, other.port2)


trio.run(main)
