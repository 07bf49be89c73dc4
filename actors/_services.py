"""Names: `serve(name)` hands every client a fresh port, `connect(name)` gets one.

Built only from ports, as a `SharedWorker` is: a `serve` block registers a *door*, a port
whose only job is to hand out ports. `connect(name)` makes a fresh `MessageChannel`, posts one
end through a door of that name and returns the other; the server receives that end from its
`incoming` iterator. The registry that maps names to doors belongs to the trio run, as the
names of `BroadcastChannel` do; a later relay for other processes and hosts is one more way to
reach a door.

The rules (`docs/explanation/services.md` states them for users):

- A name is served for as long as its `serve` block runs, and no longer.
- Several blocks may serve one name at once: each `connect` goes to the next of them in turn
  (round robin, in the order they began serving).
- `connect(name)` to a name nobody serves raises `ServiceNotFoundError` at once;
  `connect(name, wait=True)` waits until someone serves it.
- A connection is a port pair like any other: if the server's incarnation ends, the ports it
  accepted close with it, and the client sees `close` / `EndOfChannel`. A client that
  connected but was never accepted (the block ended first) sees the same.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Final, final

import trio

from ._exceptions import ServiceNotFoundError
from ._overdue import WARN_AFTER, watch
from ._owner import CURRENT, Incarnation
from ._ports import MessageChannel, MessagePort
from ._rpc import serve_calls

__all__ = ["Incoming", "connect", "serve"]


@final
class _Door:
    """One `serve` block: the port the registry posts clients' ports on."""

    __slots__ = ("owner", "port")

    def __init__(self, port: MessagePort) -> None:
        self.port = port
        self.owner = CURRENT.get()  # the actor incarnation serving, if any

    def open(self) -> bool:
        """Whether it takes clients: not once its actor has crashed or is stopping."""
        core = self.port._core
        owner = self.owner
        return core is not None and core.peer is not None and (owner is None or not owner.halted)


@final
class _Registry:
    """The names served in one trio run, each with its doors in turn order."""

    __slots__ = ("names", "waiting")

    _current: Final = trio.lowlevel.RunVar["_Registry"]("actors_services")

    def __init__(self) -> None:
        self.names: dict[str, deque[_Door]] = {}
        self.waiting: dict[str, trio.Event] = {}  # connect(wait=True) calls, per name

    @classmethod
    def current(cls) -> _Registry:
        try:
            return cls._current.get()
        except LookupError:
            registry = cls()
            cls._current.set(registry)
            return registry
        except RuntimeError:
            raise RuntimeError("serve() and connect() work inside a trio run") from None

    def add(self, name: str, door: _Door) -> None:
        self.names.setdefault(name, deque()).append(door)
        appeared = self.waiting.pop(name, None)
        if appeared is not None:
            appeared.set()

    def remove(self, name: str, door: _Door) -> None:
        doors = self.names.get(name)
        if doors is None:
            return
        with suppress(ValueError):
            doors.remove(door)
        if not doors:
            del self.names[name]

    def next_door(self, name: str) -> _Door | None:
        """The door whose turn it is (round robin), passing over doors that take no clients
        now (their block removes them as it ends)."""
        doors = self.names.get(name)
        if not doors:
            return None
        for _ in range(len(doors)):
            door = doors[0]
            doors.rotate(-1)
            if door.open():
                return door
        return None

    def appeared(self, name: str) -> trio.Event:
        event = self.waiting.get(name)
        if event is None:
            event = self.waiting[name] = trio.Event()
        return event


def _checked(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a service name is a str, not {type(name).__name__}")
    if not name:
        raise ValueError("a service name must not be empty")
    return name


@final
class Incoming:
    """The clients of a [`serve`][actors.serve] block: `async for port in incoming:`.

    Each iteration yields one fresh [`MessagePort`][actors.MessagePort]: the server's end of
    a new client's channel, the client holding the other end (what `connect` returned). Made
    inside an actor, each port belongs to the actor's incarnation, so it closes when the
    incarnation ends and its client sees `close` / `EndOfChannel`. The iteration ends when the
    block does.
    """

    __slots__ = ("_door", "_name")

    def __init__(self, name: str, door: MessagePort) -> None:
        self._name = name
        self._door = door

    def __repr__(self) -> str:
        return f"<Incoming {self._name!r}>"

    @property
    def name(self) -> str:
        """The name being served."""
        return self._name

    def __aiter__(self) -> Incoming:
        return self

    async def __anext__(self) -> MessagePort:
        while True:
            try:
                event = await self._door.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
            if event.ports:
                return event.ports[0]

    async def expose(self, obj: object, *, concurrent: bool = False) -> None:
        """Serve `obj`'s methods to every client of the block, as
        [`actors.expose`][actors.expose] serves them on one port; returns when the block ends.

        The smallest helper that removes the server's boilerplate (a nursery, a loop over the
        clients, an `expose` per client).

        Args:
            obj: the object whose public methods the clients call through `wrap`.
            concurrent: `False` (the default) runs one call at a time across all the
                clients, as OTP's `gen_server` does; `True` runs every call as it comes.
        """
        lock = None if concurrent else trio.Lock()
        async with trio.open_nursery() as nursery:
            async for port in self:
                nursery.start_soon(_serve_client, obj, port, not concurrent, lock)


async def _serve_client(
    obj: object, port: MessagePort, serial: bool, lock: trio.Lock | None
) -> None:
    """Serve one client of `Incoming.expose`, and close its port when that ends."""
    try:
        await serve_calls(obj, port, serial=serial, lock=lock)
    finally:
        port.close()


def _waiting(name: str, owner: Incarnation | None) -> dict[str, object]:
    return {"name": name, "actor": None if owner is None else owner.actor._path}


@asynccontextmanager
async def serve(name: str) -> AsyncIterator[Incoming]:
    """Serve `name` for as long as the block runs: `async with actors.serve(name) as incoming:`.

    While the block runs, [`connect(name)`][actors.connect] in this trio run reaches it, and
    `async for port in incoming:` yields one fresh port per client, as a `SharedWorker`'s
    `connect` event delivers one. Several blocks may serve one name at once: connections go
    to each in turn. When the block ends (its scope, its actor), the name is no longer served
    by it, and clients that connected but were not accepted see their port close.

    Args:
        name: the name to serve (a non-empty `str`).

    Yields:
        The [`Incoming`][actors.Incoming] clients.

    Raises:
        TypeError: `name` is not a `str`.
        ValueError: `name` is empty.
        RuntimeError: outside a trio run.
    """
    name = _checked(name)
    registry = _Registry.current()
    channel = MessageChannel()  # port1: the registry posts on it; port2: the server receives
    door = _Door(channel.port1)
    registry.add(name, door)
    try:
        yield Incoming(name, channel.port2)
    finally:
        registry.remove(name, door)
        channel.port1.close()
        channel.port2.close()  # clients not accepted yet: their ports close (D2)


async def connect(
    name: str, *, wait: bool = False, warn_after: float | None = WARN_AFTER
) -> MessagePort:
    """Connect to the service `name`: return the client's end of a fresh channel whose other
    end the server gets from its `incoming` iterator.

    The port works at once: what is posted on it waits at the server's end until the server
    receives it. Made inside an actor, it belongs to the actor's incarnation.

    Args:
        name: the name a [`serve`][actors.serve] block serves.
        wait: if nobody serves `name` now, wait until someone does (how a client finds a
            service again after it restarted) instead of raising. A wait still going on after
            `warn_after` seconds is reported once as a `connect_waiting` warning.
        warn_after: see `wait`; `None` never reports it.

    Returns:
        The client's port.

    Raises:
        ServiceNotFoundError: nobody serves `name` (and `wait` is `False`).
        TypeError: `name` is not a `str`.
        ValueError: `name` is empty.
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    name = _checked(name)
    registry = _Registry.current()
    watched = None
    try:
        while True:
            door = registry.next_door(name)
            if door is not None:
                break
            if not wait:
                raise ServiceNotFoundError(name)
            if watched is None:
                watched = watch(warn_after, "connect_waiting", _waiting, name, CURRENT.get())
            await registry.appeared(name).wait()
    finally:
        if watched is not None:
            watched.done()
    channel = MessageChannel()
    door.port.post_message(None, [channel.port2])
    await trio.lowlevel.cancel_shielded_checkpoint()
    return channel.port1
