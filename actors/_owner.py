"""Who owns a port: the actor incarnation whose task made it or received it.

An `Incarnation` is one run of an actor's function. The `CURRENT` context variable holds
it in the actor's task, in every task that one starts, and in the handlers of every port it
set up (they run in a copy of its context). Ports it creates (`MessageChannel()`) and ports
it receives (`receive()`, a handler's event) are *adopted*: held weakly, and closed when the
incarnation ends, so every peer hears of the end through `onclose` / `EndOfChannel`.

This module knows nothing of ports or supervisors: it holds weak references and calls
`close()`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, final

import trio

if TYPE_CHECKING:
    from ._actor import ActorHandle

__all__ = ["CURRENT", "Incarnation", "adopt"]


@final
class Incarnation:
    """One run of an actor: its cancel scope, the ports it owns, its running async handlers."""

    __slots__ = (
        "actor",
        "ended",
        "failure",
        "handlers",
        "idle",
        "number",
        "ports",
        "readiness",
        "scope",
    )

    def __init__(self, actor: ActorHandle, number: int) -> None:
        self.actor = actor
        self.number = number
        self.scope = trio.CancelScope()
        self.ports: weakref.WeakSet[Any] | None = None
        self.handlers: set[trio.CancelScope] | None = None
        self.failure: Exception | None = None  # from a message handler that raised
        self.ended = False
        self.idle: trio.Event | None = None  # set when the last handler is done, if awaited
        self.readiness: trio.Event | None = None  # awaited by the next child of a group restart

    def ready(self) -> None:
        """The actor began (or called `task_status.started()`, or ended)."""
        if self.readiness is not None:
            self.readiness.set()

    def adopt(self, port: Any) -> None:
        """Own `port` from now on: it is closed when this incarnation ends."""
        ports = self.ports
        if ports is None:
            ports = self.ports = weakref.WeakSet()
        ports.add(port)

    def crash(self, exc: Exception) -> bool:
        """A message handler of this incarnation raised: the incarnation crashes with `exc`.

        Returns `False` if the incarnation is already over (the caller logs the error).
        """
        if self.ended:
            return False
        if self.failure is None:
            self.failure = exc
        self.scope.cancel()
        return True

    @contextmanager
    def handler_scope(self) -> Iterator[None]:
        """Run an async handler so that the end of this incarnation cancels it."""
        scope = trio.CancelScope()
        if self.ended or self.scope.cancel_called:  # an actor's handlers never outlive it
            scope.cancel()
        handlers = self.handlers
        if handlers is None:
            handlers = self.handlers = set()
        handlers.add(scope)
        try:
            with scope:
                yield
        finally:
            handlers.discard(scope)
            if not handlers and self.idle is not None:
                self.idle.set()

    def open_ports(self) -> int:
        """How many ports this incarnation owns that are still open."""
        if self.ports is None:
            return 0
        return sum(1 for port in self.ports if getattr(port, "_core", None) is not None)

    async def end(self) -> None:
        """Cancel this incarnation's async handlers, wait for them, close every port it owns."""
        self.ended = True
        handlers = self.handlers
        if handlers:
            self.idle = trio.Event()
            for scope in handlers:
                scope.cancel()
            with trio.CancelScope(shield=True):
                await self.idle.wait()
        self.close_ports()

    def close_ports(self) -> None:
        ports = self.ports
        if ports:
            for port in list(ports):
                port.close()


CURRENT: Final = ContextVar[Incarnation | None]("actors_current_actor", default=None)


def adopt(ports: Iterable[Any], owner: Incarnation | None) -> None:
    """Give `ports` to `owner` (no-op for `None`: a task that is not an actor)."""
    if owner is not None:
        for port in ports:
            owner.adopt(port)
