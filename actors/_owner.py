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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, final

import trio

if TYPE_CHECKING:
    from ._actor import ActorHandle

__all__ = ["CURRENT", "Incarnation", "adopt"]


@final
class Incarnation:
    """One run of an actor: its cancel scope, the ports it owns, its running async handlers.

    Its scope is shielded: a cancellation from outside the supervisor never reaches the actor
    directly. Only its supervisor stops it (`stop()`), one child at a time, in order.
    """

    __slots__ = (
        "actor",
        "attached",
        "began",
        "deadline",
        "ended",
        "failure",
        "finished",
        "halted",
        "handlers",
        "idle",
        "kill",
        "killed",
        "number",
        "ports",
        "ready",
        "scope",
        "slot",
        "task",
        "timer",
        "waiters",
    )

    def __init__(self, actor: ActorHandle, number: int) -> None:
        self.actor = actor
        self.number = number
        self.scope = trio.CancelScope(shield=True)
        self.ports: weakref.WeakSet[Any] | None = None
        # Ports whose handlers it set up: those it does not own lose them when it ends.
        self.attached: weakref.WeakSet[Any] | None = None
        # Its async handlers still running, each with the port core it keeps busy.
        self.handlers: dict[trio.CancelScope, Any] | None = None
        self.failure: BaseException | None = None  # from a message handler that raised
        self.ended = False  # its end() began: handlers are cancelled, ports about to close
        self.halted = False  # its function ended, it crashed or it was asked to stop
        self.killed = False  # its supervisor gave up waiting for it (its deadline passed)
        self.kill: Callable[[], object] | None = None  # a real kill (a process actor's SIGKILL)
        self.idle: trio.Event | None = None  # set when the last handler is done, if awaited
        self.task: trio.lowlevel.Task | None = None
        self.slot: Sequence[object] = ()  # the slot's ports and buffers it was started with
        self.deadline: float | None = None  # when it was asked to stop: the time it must end by
        self.timer: list[Any] | None = None  # its deadline's entry in the driver's timers
        # Milestones, each a flag; a task that waits for one is parked in `waiters`.
        self.began = False  # its task is running (siblings begin in spawn order)
        self.ready = False  # began; for a child of Supervisor.start(), called started()
        self.finished = False  # its task is done with it: ports closed or moved on
        self.waiters: dict[str, list[trio.lowlevel.Task]] | None = None

    def mark(self, milestone: str) -> None:
        """Reach `milestone` (`began`, `ready` or `finished`) and wake whoever waits for it."""
        if getattr(self, milestone):
            return
        setattr(self, milestone, True)
        waiters = self.waiters
        if waiters and (tasks := waiters.pop(milestone, None)):
            for task in tasks:
                trio.lowlevel.reschedule(task)

    async def reach(self, milestone: str) -> None:
        """Wait until `milestone` is reached (at once if it has been: no checkpoint then)."""
        if getattr(self, milestone):
            return
        if self.waiters is None:
            self.waiters = {}
        tasks = self.waiters.setdefault(milestone, [])
        task = trio.lowlevel.current_task()
        tasks.append(task)

        def abort(_: object) -> trio.lowlevel.Abort:
            tasks.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def adopt(self, port: Any) -> None:
        """Own `port` from now on: it is closed when this incarnation ends."""
        ports = self.ports
        if ports is None:
            ports = self.ports = weakref.WeakSet()
        ports.add(port)

    def attach(self, port: Any) -> None:
        """`port`'s handlers were set up by this incarnation: they end with it."""
        attached = self.attached
        if attached is None:
            attached = self.attached = weakref.WeakSet()
        attached.add(port)

    def keeps(self, port: object) -> bool:
        """Whether `port` is one of the slot's: it outlives this incarnation."""
        return any(p is port for p in self.slot)

    def crash(self, exc: BaseException) -> bool:
        """A message handler of this incarnation raised: the incarnation crashes with `exc`
        (or, for a `BaseException` such as `KeyboardInterrupt`, raises it in its task).

        Returns `False` if the incarnation is already over (the caller logs the error).
        """
        if self.ended or self.killed:
            return False
        if self.failure is None:
            self.failure = exc
        self.halted = True  # no handler of a crashed incarnation gets another event
        self.scope.cancel()
        return True

    def stop(self) -> None:
        """Cancel this incarnation: its handlers get nothing more from now on."""
        self.halted = True
        self.scope.cancel()

    @contextmanager
    def handler_scope(self, core: Any = None) -> Iterator[None]:
        """Run an async handler (of the port `core`) so that the end of this incarnation
        cancels it."""
        scope = trio.CancelScope()
        if self.ended or self.halted:  # an actor's handlers never outlive it
            scope.cancel()
        handlers = self.handlers
        if handlers is None:
            handlers = self.handlers = {}
        handlers[scope] = core
        try:
            with scope:
                yield
        finally:
            handlers.pop(scope, None)
            if not handlers and self.idle is not None:
                self.idle.set()

    def open_ports(self) -> int:
        """How many ports this incarnation owns that are still open."""
        if self.ports is None:
            return 0
        return sum(1 for port in self.ports if getattr(port, "_core", None) is not None)

    def cancel_handlers(self) -> bool:
        """Cancel every async handler still running; `True` if there were any."""
        handlers = self.handlers
        if not handlers:
            return False
        for scope in handlers:
            scope.cancel()
        return True

    def free_ports(self) -> None:
        """Given up on: the ports its stuck handlers hold go on without them (the next
        incarnation gets their next message; a handler that ends later frees nothing)."""
        for core in list((self.handlers or {}).values()):
            if core is not None and core.busy:
                core.forsake()

    async def end(self) -> None:
        """Cancel this incarnation's async handlers, wait for them, close every port it owns."""
        self.ended = self.halted = True
        if self.cancel_handlers():
            self.idle = trio.Event()
            with trio.CancelScope(shield=True):
                await self.idle.wait()
        self.close_ports()

    def close_ports(self) -> None:
        """Close every port it owns; take its handlers off the ports it does not own."""
        ports = self.ports
        if ports:
            for port in list(ports):
                port.close()
        attached = self.attached
        if attached:
            for port in list(attached):
                port._disown(self)


CURRENT: Final = ContextVar[Incarnation | None]("actors_current_actor", default=None)


def adopt(ports: Iterable[Any], owner: Incarnation | None) -> None:
    """Give `ports` to `owner` (no-op for `None`: a task that is not an actor)."""
    if owner is not None:
        for port in ports:
            owner.adopt(port)
