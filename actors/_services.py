"""Names: `serve(name)` hands every client a fresh port, `connect(name)` gets one.

Built only from ports, as a `SharedWorker` is: a `serve` block registers a *door*, a port
whose only job is to hand out ports. `connect(name)` makes a fresh `MessageChannel`, posts one
end through a door of that name and returns the other; the server receives that end from its
`incoming` iterator. The registry that maps names to doors belongs to the trio run of the
tree's root process. In any other process a `Remote` (which the process layer plugs in, so
this module knows nothing of the wire) reaches the root's: a `serve` there moves its door to
the root, and a `connect` there sends the client's end to the root, which posts it through a
door (`serve_from_afar`, `connect_from_afar`). A door whose server lives in another process is
just a port whose peer is over there.

The rules (`docs/explanation/services.md` states them for users):

- A name is served for as long as its `serve` block runs, and no longer.
- Several blocks may serve one name at once: each `connect` goes to the next of them in turn
  (round robin, in the order they began serving).
- `connect(name)` to a name nobody serves raises `ServiceNotFoundError` at once;
  `connect(name, wait=True)` waits until someone serves it.
- A connection is a port pair like any other: if the server's incarnation ends, the ports it
  accepted close with it, and the client sees `close` / `EndOfChannel`. A client that
  connected but was never accepted (the block ended first) sees the same.
- Across processes, the root applies each `serve` and `connect` when its message arrives, so a
  `serve` that returned is visible to every `connect` made after it in causal order, in any
  process of the tree; a server process that is gone takes its doors with it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Final, Protocol, final

import trio

from ._exceptions import ServiceNotFoundError
from ._overdue import WARN_AFTER, watch
from ._owner import CURRENT, Incarnation
from ._ports import MessageChannel, MessagePort
from ._rpc import serve_calls

__all__ = [
    "Incoming",
    "Remote",
    "connect",
    "connect_from_afar",
    "remote",
    "serve",
    "serve_from_afar",
    "use_remote",
]


class Remote(Protocol):
    """The names of the tree's root, reached from another process (the process layer makes
    one for each process it starts, and plugs it in with `use_remote`)."""

    def serve(self, name: str, door: MessagePort) -> None:
        """Serve `name` at the root through `door`, which moves there (never blocks)."""

    async def connect(self, name: str, client: MessagePort, wait: bool) -> None:
        """Have the root post `client`, which moves there, through a door of `name`; return
        once it did. Raises `ServiceNotFoundError` if nobody serves `name` (and not `wait`)."""


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

    __slots__ = ("names", "parked", "remote", "waiting")

    _current: Final = trio.lowlevel.RunVar["_Registry"]("actors_services")

    def __init__(self) -> None:
        self.names: dict[str, deque[_Door]] = {}
        self.waiting: dict[str, trio.Event] = {}  # connect(wait=True) calls, per name
        # connect(wait=True) calls from other processes, per name: (client, reply) ports
        self.parked: dict[str, dict[MessagePort, MessagePort]] = {}
        self.remote: Remote | None = None  # set in a process that is not the tree's root

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
        if self.parked:
            self.unpark(name)

    def unpark(self, name: str) -> None:
        """Hand the waiting clients from other processes of `name` to its doors, in turn."""
        parked = self.parked.pop(name, None)
        while parked:
            client, reply = next(iter(parked.items()))
            if reply._core is None or reply._core.peer is None:  # its connect gave up
                del parked[client]
                client.close()
                reply.close()
                continue
            door = self.next_door(name)
            if door is None:  # no door takes clients now: they wait on
                self.parked[name] = parked
                return
            del parked[client]
            _hand_over(door, client, reply)

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


def _hand_over(door: _Door, client: MessagePort, reply: MessagePort) -> None:
    """A connect from another process reaches `door`: `client` goes through it, and the
    connect is told."""
    door.port.post_message(None, [client])
    reply.post_message(True)
    reply.close()


def use_remote(names: Remote) -> None:
    """This trio run is not the tree's root: its `serve` and `connect` go to the root's
    names through `names` (the process layer calls it as a child process starts)."""
    _Registry.current().remote = names


def remote() -> Remote | None:
    """The root's names as this run reaches them, or `None` if this run is the root."""
    return _Registry.current().remote


def serve_from_afar(name: str, door: MessagePort) -> None:
    """At the root: a `serve` block in another process serves `name` through `door` (its end
    moved here). It takes clients, in its turn, until it closes.

    Raises:
        TypeError, ValueError: `name` is not a name (the caller closes `door`).
    """
    name = _checked(name)
    registry = _Registry.current()
    entry = _Door(door)
    entry.owner = None  # its server is over there: the door takes clients until it closes
    door.onclose = lambda _: registry.remove(name, entry)
    door.start()
    registry.add(name, entry)


def connect_from_afar(name: str, client: MessagePort, reply: MessagePort, wait: bool) -> None:
    """At the root: a `connect` in another process. `client` goes through the next door of
    `name`, and `reply` gets `True`; with nobody serving `name`, `reply` gets `False` (and
    `client` closes), or, if `wait`, both wait here until someone serves it or the connect
    gives up (`reply` closes).

    Raises:
        TypeError, ValueError: `name` is not a name (the caller closes the ports).
    """
    name = _checked(name)
    registry = _Registry.current()
    door = registry.next_door(name)
    if door is not None:
        _hand_over(door, client, reply)
        return
    if not wait:
        client.close()
        reply.post_message(False)
        reply.close()
        return
    parked = registry.parked.setdefault(name, {})
    parked[client] = reply

    def gave_up(_: object) -> None:
        waiting = registry.parked.get(name)
        if waiting is not None and waiting.get(client) is reply:
            del waiting[client]
            if not waiting:
                del registry.parked[name]
            client.close()
        reply.close()

    reply.onclose = gave_up
    reply.start()


def _waiting(name: str, owner: Incarnation | None) -> dict[str, object]:
    return {"name": name, "actor": None if owner is None else owner.actor._path}


@asynccontextmanager
async def serve(name: str) -> AsyncIterator[Incoming]:
    """Serve `name` for as long as the block runs: `async with actors.serve(name) as incoming:`.

    While the block runs, [`connect(name)`][actors.connect] in any process of the tree
    reaches it (this trio run, or a process actor's: see
    [Across processes](../explanation/services.md#across-processes)), and
    `async for port in incoming:` yields one fresh port per client, as a `SharedWorker`'s
    `connect` event delivers one. Several blocks may serve one name at once, in any
    processes: connections go to each in turn. When the block ends (its scope, its actor, its
    process), the name is no longer served by it, and clients that connected but were not
    accepted see their port close.

    In a process actor, the block registers at the tree's root process before it yields: a
    `connect` that comes after it in causal order (say, once `Supervisor.start` has returned
    what the block's actor passed to `task_status.started()`) finds it.

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
    names = registry.remote
    if names is None:
        registry.add(name, door)
    else:
        names.serve(name, channel.port1)  # the door moves to the root's registry
    try:
        yield Incoming(name, channel.port2)
    finally:
        if names is None:
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

    The server may be in any process of the tree: names live in its root process. There, a
    `connect` costs what it costs without processes; in a process actor it is one round trip
    to the root (see [Across processes](../explanation/services.md#across-processes)).

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
    if registry.remote is not None:
        return await _connect_afar(registry.remote, name, wait, warn_after)
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


async def _connect_afar(
    names: Remote, name: str, wait: bool, warn_after: float | None
) -> MessagePort:
    """`connect` in a process that is not the root: the root posts the server's end."""
    channel = MessageChannel()
    watched = watch(warn_after, "connect_waiting", _waiting, name, CURRENT.get()) if wait else None
    try:
        await names.connect(name, channel.port2, wait)
    except BaseException:
        channel.port1.close()  # a server that got the other end sees its client leave
        raise
    finally:
        if watched is not None:
            watched.done()
    return channel.port1
