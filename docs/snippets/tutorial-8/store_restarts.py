import logging
from typing import Protocol

import structlog
import trio
import trio.testing

import actors
from actors import Restart

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


class KV(Protocol):
    async def get(self, key: str) -> object: ...
    async def put(self, key: str, value: object) -> None: ...


class Store:
    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = value


async def store():
    async with actors.serve("kv") as incoming, trio.open_nursery() as nursery:
        if actors.current_actor().incarnation == 1:
            nursery.start_soon(failing_disk)
        await incoming.expose(Store())


async def failing_disk():
    await trio.sleep(2.2)
    raise OSError("disk failure")  # crashes the store's first incarnation


async def client(name):
    kv = actors.wrap(await actors.connect("kv", wait=True), KV)
    for second in range(5):
        try:
            await kv.put(name, second)
        except trio.BrokenResourceError:
            print(f"t={trio.current_time():g}s {name}: the store is gone; connecting again")
            kv = actors.wrap(await actors.connect("kv", wait=True), KV)
            await kv.put(name, second)
        await trio.sleep(1)
    print(f"t={trio.current_time():g}s {name}: done, the store has {name}={await kv.get(name)}")


async def main():
    async with actors.open_supervisor() as sup:
        sup.spawn(store)
        ann = sup.spawn(client, "ann", name="ann", restart=Restart.TRANSIENT)
        await trio.sleep(0.5)
        bob = sup.spawn(client, "bob", name="bob", restart=Restart.TRANSIENT)
        await ann.wait()
        await bob.wait()
        sup.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
