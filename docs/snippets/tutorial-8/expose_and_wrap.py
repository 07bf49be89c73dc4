from typing import Protocol

import trio

import actors


class Counter(Protocol):  # the counter as a client sees it: every method is awaited
    async def add(self, n: int) -> int: ...
    async def reset(self) -> None: ...


class Count:  # the counter as the server writes it: a plain class
    def __init__(self):
        self.value = 0

    def add(self, n):
        if not isinstance(n, int):
            raise TypeError(f"add() takes an int, not {type(n).__name__}")
        self.value += n
        return self.value

    def reset(self):
        self.value = 0


async def counter():
    async with actors.serve("counter") as incoming:
        await incoming.expose(Count())  # every client calls the one Count


async def main():
    async with actors.open_supervisor() as sup:
        sup.spawn(counter, restart=actors.Restart.TRANSIENT)
        alice = actors.wrap(await actors.connect("counter", wait=True), Counter)
        bob = actors.wrap(await actors.connect("counter"), Counter)
        print(await alice.add(1), await bob.add(10), await alice.add(1))
        try:
            await bob.add("ten")
        except TypeError as error:  # raised on the server, raised here as itself
            print("TypeError:", error)
        await alice.reset()
        print(await bob.add(5))
        sup.cancel()


trio.run(main)
