"""Names across processes: every process of a tree reaches the names of its root.

The registry of `serve` / `connect` lives in the tree's root process (the one with no parent
node). Every process actor gets a *names port* whose peer is at the root, in the first message
on its control channel (before `hello`); a process actor that spawns process actors of its own
gets a fresh one for each of them from the root (`attach`), so a grandchild talks to the root
directly, not through its parent's actor.

At the root the peer of a names port is no port but a *root end*: what arrives on it is applied
to the registry as its frame is handled, not later through a queue and a handler. That is what
makes a `serve` visible to every `connect` made after it in causal order: the tree's links are
FIFO and forward in order, so a request reaches the root before anything its sender did
afterwards, and the root applies it before it handles the next frame.

Requests, each a tuple with its ports (the transfer list):

- `("serve", name)` `[door]`: a `serve` block; the door takes clients until it closes.
- `("connect", name, wait)` `[client, reply]`: post `client` through a door of `name`; `reply`
  gets `True`, or `False` if nobody serves it (and not `wait`).
- `("attach",)` `[port]`: `port` becomes one more names port, for a child of the sender.

What a process sends that is not one of these is dropped, its ports closed.
"""

from __future__ import annotations

import contextvars
from typing import Any, cast, final

import trio

from .._events import MessageEvent
from .._exceptions import ServiceNotFoundError
from .._log import logger
from .._owner import CURRENT
from .._ports import MessageChannel, MessagePort
from .._queue import CLOSE, PortCore
from .._services import connect_from_afar, remote, serve_from_afar, use_remote
from .._wire.node import RemoteEnd

__all__ = ["join", "send"]


@final
class _Names:
    """The root's names from a process that is not the root: requests on the names port."""

    __slots__ = ("port",)

    def __init__(self, port: MessagePort) -> None:
        self.port = port

    def serve(self, name: str, door: MessagePort) -> None:
        self.port.post_message(("serve", name), [door])

    async def connect(self, name: str, client: MessagePort, wait: bool) -> None:
        reply = MessageChannel()
        self.port.post_message(("connect", name, wait), [client, reply.port2])
        try:
            event = await reply.port1.receive()
        except trio.EndOfChannel:  # the root dropped it: it could not be reached
            raise ServiceNotFoundError(name) from None
        finally:
            reply.port1.close()
        if event.data is not True:
            raise ServiceNotFoundError(name)

    def attach(self, port: MessagePort) -> None:
        self.port.post_message(("attach",), [port])


def send(control: MessagePort) -> None:
    """Send a child process its way to the root's names: `("names",)` with a names port, the
    first message on its control channel."""
    channel = MessageChannel()
    names = remote()
    if isinstance(names, _Names):
        names.attach(channel.port2)  # first: the root knows it before the child talks on it
        control.post_message(("names",), [channel.port1])
    else:
        control.post_message(("names",), [channel.port1])
        _root_end(channel.port2)  # its peer is in the child now


def join(event: MessageEvent) -> None:
    """In a child process: reach the root's names through the port `send` sent."""
    ports = event.ports
    if event.data == ("names",) and len(ports) == 1:
        port = ports[0]
        if port._core is not None:
            port._core.collectable = True  # it lives as long as the process
        use_remote(_Names(port))


@final
class _RootEnd:
    """The root's end of a names port: it has what a `RemoteEnd` looks at on its local core,
    and applies each request as it arrives."""

    __slots__ = ("drained", "id", "peer", "reads", "thread", "token")

    def __init__(self, remote: RemoteEnd) -> None:
        self.peer: RemoteEnd | None = remote
        self.reads: RemoteEnd | None = remote
        self.drained: dict[trio.Event, None] | None = None
        self.thread = remote.thread
        self.token = remote.token
        self.id = f"names{remote.cid:x}"

    def deliver(self, data: Any, ports: Any) -> None:
        if data is CLOSE:  # the process is gone (its doors close on their own)
            self.peer = self.reads = None
            return
        reads = self.reads
        if reads is not None:
            reads.took()  # read at once: the sender's window never fills
        context = contextvars.copy_context()
        context.run(_apply, data, tuple(ports or ()))

    def taken(self) -> None:
        self.drained = None


def _root_end(port: MessagePort) -> None:
    """At the root: `port`, whose peer is in another process, becomes a root end."""
    core = port._core
    remote = None if core is None else core.peer
    if core is None or not isinstance(remote, RemoteEnd):  # the child is gone already
        port.close()
        return
    queued = list(core.queue)
    core.queue.clear()
    core.peer = core.reads = None
    port._core = None
    port._state = "transferred"
    end = _RootEnd(remote)
    remote.local = cast(PortCore, end)  # duck-typed: see _RootEnd
    remote.peer = cast(PortCore, end)
    for data, ports, _ in queued:
        end.deliver(data, ports)


def _apply(data: Any, ports: tuple[MessagePort, ...]) -> None:
    """One request from another process, applied at the root (never raises)."""
    CURRENT.set(None)  # what it sets up belongs to the tree's names, not to an actor
    try:
        kind = data[0] if type(data) is tuple and data else None
        if kind == "serve" and len(data) == 2 and len(ports) == 1:
            serve_from_afar(data[1], ports[0])
            return
        if kind == "connect" and len(data) == 3 and len(ports) == 2:
            connect_from_afar(data[1], ports[0], ports[1], data[2] is True)
            return
        if kind == "attach" and len(data) == 1 and len(ports) == 1:
            _root_end(ports[0])
            return
        reason = "not a request"
    except Exception as exc:  # a bad request from another process changes nothing here
        reason = repr(exc)
    logger().debug("names_request_dropped", reason=reason)
    for port in ports:
        port.close()
