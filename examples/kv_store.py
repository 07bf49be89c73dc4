"""Key-value store: a supervised service found by name, called through typed proxies.

The store is an actor that serves the name ``"kv"``: every client that connects gets a port of
its own, and calls the store's methods through it with ``actors.wrap``. Three client actors
write and read their own keys, a round every 0.2 seconds. Midway (at 0.3 s) the store's disk
fails and the store crashes:

1. The store's incarnation ends; the connections it had accepted close with it, so each
   client's next call fails with ``trio.BrokenResourceError``.
2. Its supervisor restarts it (``PERMANENT``). The store keeps its data in nothing that
   survives a crash, so the new incarnation starts empty.
3. Each client connects again by name, ``connect("kv", wait=True)``, which waits until the
   restarted store serves the name, and writes its key again. Nobody keeps a registry of who
   serves what: the name does that.

Run it (after ``python3 dev.py setup``): ``.venv/bin/python examples/kv_store.py``.
"""

from __future__ import annotations

import logging
import sys
from typing import Protocol

import structlog
import trio

import actors
from actors import Restart


class KV(Protocol):
    """The store as its clients see it: every method is awaited."""

    async def get(self, key: str) -> object: ...
    async def put(self, key: str, value: object) -> None: ...


class Store:
    """The store's state and methods: plain Python, no ports in sight."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    def get(self, key: str) -> object:
        return self.data.get(key)

    def put(self, key: str, value: object) -> None:
        self.data[key] = value


async def store() -> None:
    """Serve "kv" until the supervisor stops it: one call at a time, across all clients."""
    async with actors.serve("kv") as incoming, trio.open_nursery() as nursery:
        if actors.current_actor().incarnation == 1:
            nursery.start_soon(failing_disk)  # crashes the first incarnation at 0.3 s
        await incoming.expose(Store())


async def failing_disk() -> None:
    await trio.sleep(0.3)
    raise OSError("disk failure")


async def client(name: str) -> None:
    """Write and read back a key each round; after losing the store, connect again."""
    rounds, lost = 0, 0
    kv = actors.wrap(await actors.connect("kv", wait=True), KV)
    while rounds < 4:
        try:
            await kv.put(name, rounds)
            assert await kv.get(name) == rounds
            rounds += 1
        except trio.BrokenResourceError:
            lost += 1
            print(f"{name}: lost the store after {rounds} rounds; connecting again by name")
            kv = actors.wrap(await actors.connect("kv", wait=True), KV)
            continue
        await trio.sleep(0.2)
    print(f"{name}: {rounds} rounds done, the store lost {lost} time(s)")


async def main() -> None:
    async with actors.open_supervisor(name="app") as sup:
        sup.spawn(store)
        clients = [
            sup.spawn(client, name, name=name, restart=Restart.TRANSIENT)
            for name in ("ann", "bob", "cy")
        ]
        for handle in clients:
            await handle.wait()
        sup.cancel()
    print("kv_store done: the store restarted and every client reconnected by name")


if __name__ == "__main__":
    structlog.configure(  # one line per event, on stderr
        processors=[
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=lambda *a: None)
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    trio.run(main)
