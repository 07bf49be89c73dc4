import trio
import trio.testing

from actors import BroadcastChannel, InvalidStateError


async def subscriber(channel):
    try:
        async for event in channel:  # runs until the channel is closed: never EndOfChannel
            print("reader got", event.data)
    except trio.ClosedResourceError as exc:
        print("reader:", exc)


async def main():
    prices = BroadcastChannel("prices")

    once = BroadcastChannel("prices")

    def first_only(event):
        print("once got", event.data, "and closes")
        once.close()  # what is still pending for it is dropped

    once.onmessage = first_only
    prices.post_message(("tea", 4.5))
    prices.post_message(("tea", 4.75))
    await trio.testing.wait_all_tasks_blocked()

    reader = BroadcastChannel("prices")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(subscriber, reader)
        prices.post_message(("tea", 5.0))
        await trio.testing.wait_all_tasks_blocked()
        reader.close()  # wakes the task blocked in receive()

    prices.close()
    prices.close()  # idempotent
    try:
        prices.post_message(trio.Lock())  # closed is checked before the message is cloned
    except InvalidStateError as exc:
        print(f"InvalidStateError: {exc}")


trio.run(main)
