import trio
import trio.testing

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    port = channel.port2

    async def receiver():
        try:
            await port.receive()
        except trio.BusyResourceError as exc:
            print("receiver:", exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        port.onmessage = lambda event: print("handler:", event.data)

    channel.port1.post_message(1)
    await trio.testing.wait_all_tasks_blocked()

    port.onmessage = None  # no handler left: receive() gets the messages again
    channel.port1.post_message(2)
    print("receive():", (await port.receive()).data)


trio.run(main)
