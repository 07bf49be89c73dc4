import trio
import trio.testing

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    port = channel.port2
    port.onmessage = lambda event: print("message", event.data)
    port.onclose = lambda event: print(event.type, "at port2:", event.target is port)

    channel.port1.post_message(1)
    channel.port1.post_message(2)
    channel.port1.close()  # port1 gets no close event of its own
    await trio.testing.wait_all_tasks_blocked()

    channel.port1.post_message(3)  # silently dropped: port1 is closed
    port.post_message(4)  # silently dropped: port2's peer is gone
    try:
        await port.send(5)
    except trio.BrokenResourceError as exc:
        print("send:", exc)


trio.run(main)
