from typing import Protocol

import trio

import actors
from actors import MessageChannel


class Counter(Protocol):  # what the client sees: every method is async
    async def add(self, name: str, n: int) -> int: ...
    async def total(self) -> dict[str, int]: ...
    async def watch(self, callback) -> None: ...


class Counters:  # what the server exposes: plain methods, sync or async
    def __init__(self):
        self.counts = {}
        self.watchers = []

    async def add(self, name, n):
        if n < 0:
            raise ValueError(f"cannot add {n}")
        self.counts[name] = self.counts.get(name, 0) + n
        for callback in self.watchers:
            await callback(name, self.counts[name])
        return self.counts[name]

    def total(self):
        return self.counts

    def watch(self, callback):
        self.watchers.append(callback)


async def main():
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.expose, Counters(), channel.port2)

        counter = actors.wrap(channel.port1, Counter)
        seen = []
        await counter.watch(actors.proxy(lambda name, n: seen.append((name, n))))
        print(await counter.add("apples", 3))
        print(await counter.add("apples", 2))
        totals = await counter.total()
        totals["apples"] = 0  # a clone: the server's counts do not change
        print(await counter.total())
        try:
            await counter.add("pears", -1)
        except ValueError as error:
            print("raised here:", repr(error))
        print("the watcher saw", seen)
        channel.port1.close()  # expose() returns


trio.run(main)
