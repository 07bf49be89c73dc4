import trio
import trio.testing

from actors import BroadcastChannel, open_supervisor


async def watcher(name):
    prices = BroadcastChannel("prices")  # closed when this incarnation ends
    prices.onmessage = lambda event: print(f"  {name} heard {event.data}")
    prices.post_message(f"{name} is listening")  # to every other "prices" channel
    await trio.sleep_forever()


async def main():
    prices = BroadcastChannel("prices")  # main joins too: anyone in the trio run can
    prices.onmessage = lambda event: print(f"  main heard {event.data}")
    async with open_supervisor() as sup:
        print("ann joins")
        ann = sup.spawn(watcher, "ann")
        await trio.testing.wait_all_tasks_blocked()
        prices.post_message(("ACME", 101.5))
        await trio.testing.wait_all_tasks_blocked()

        print("bob joins")
        sup.spawn(watcher, "bob")
        await trio.testing.wait_all_tasks_blocked()
        prices.post_message(("ACME", 102.0))
        await trio.testing.wait_all_tasks_blocked()

        print("ann is stopped for good")
        ann.cancel()
        await trio.testing.wait_all_tasks_blocked()
        prices.post_message(("ACME", 99.0))
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    prices.close()


trio.run(main)
