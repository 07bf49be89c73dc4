"""Supervisors: nurseries that restart their children after Erlang/OTP's strategies.

The rules (`docs/explanation/supervision.md` states them for users):

- A child stops *for good* when it returns and is not `PERMANENT`, crashes and is
  `TEMPORARY`, is cancelled (`ActorHandle.cancel`, `Supervisor.cancel`, or a cancel scope
  around the supervisor), or the supervisor gives up. Only then are the ports it was spawned
  with closed; every incarnation's own ports are closed when that incarnation ends.
- Otherwise it is restarted, with its siblings as the strategy says. One crash is one restart
  for the intensity count, however many children it restarts.
- More than `max_restarts` restarts within `within` seconds: the supervisor gives up.

Exits are handled synchronously at the end of the exiting child's task, and every child task
is started in a copy of the context the supervisor was opened in, so a child never inherits
the context of whoever called `spawn` or of the incarnation it replaces.
"""

from __future__ import annotations

import contextvars
import inspect
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVarTuple, final

import structlog
import trio

from ._actor import ActorHandle, ActorState, Starter, TaskStatus
from ._clone import commit, serialize_moving_all
from ._exceptions import TooManyRestartsError
from ._log import debug, logger
from ._owner import CURRENT, Incarnation, adopt
from ._ports import _NoPublicConstructor
from ._restart import Backoff, Group, Restart, RestartStrategy, SupervisorStatistics
from ._tree import ActorTree, supervisor_node

__all__ = ["Supervisor", "open_supervisor"]

PosArgT = TypeVarTuple("PosArgT")


@final
class Supervisor(metaclass=_NoPublicConstructor):
    """A nursery of actors that restarts them.

    Made by [`open_supervisor()`][actors.open_supervisor]; it has no public constructor.
    """

    _made_by = "open one with 'async with actors.open_supervisor() as sup'"

    __slots__ = (
        "__weakref__",
        "_backoff",
        "_by_name",
        "_children",
        "_closed",
        "_context",
        "_gave_up",
        "_max_restarts",
        "_names",
        "_nursery",
        "_opener",
        "_path",
        "_restart_times",
        "_restarts",
        "_spawned",
        "_stopping",
        "_strategy",
        "_within",
    )

    def __init__(
        self,
        strategy: RestartStrategy,
        max_restarts: int,
        within: float,
        backoff: Backoff | None,
        path: str,
        opener: ActorHandle | None,
    ) -> None:
        self._strategy = strategy
        self._max_restarts = max_restarts
        self._within = within
        self._backoff = backoff
        self._path = path
        self._opener = opener
        self._nursery: trio.Nursery | None = None
        self._context = contextvars.copy_context()
        self._children: dict[ActorHandle, None] = {}  # not stopped for good, in spawn order
        self._by_name: dict[str, ActorHandle] = {}
        self._names: dict[str, int] = {}
        self._spawned = 0
        self._restart_times: deque[float] = deque()
        self._restarts = 0
        self._stopping = False
        self._closed = False
        self._gave_up: TooManyRestartsError | None = None

    def __repr__(self) -> str:
        return f"<Supervisor {self._path} {self._strategy.value} children={len(self._children)}>"

    @property
    def path(self) -> str:
        """Its place in the tree; its children's paths start with it."""
        return self._path

    @property
    def strategy(self) -> RestartStrategy:
        """How it restarts its children."""
        return self._strategy

    @property
    def children(self) -> tuple[ActorHandle, ...]:
        """Its children that have not stopped for good, in spawn order."""
        return tuple(self._children)

    # -- spawning -------------------------------------------------------------------------

    def spawn(
        self,
        fn: Callable[[*PosArgT], Awaitable[object]],
        *args: *PosArgT,
        name: str | None = None,
        restart: Restart = Restart.PERMANENT,
    ) -> ActorHandle:
        """Start `fn(*args)` as a child actor, like `Nursery.start_soon`; return its handle.

        `args` reach `fn` as `post_message` would deliver them: structured-cloned, with
        every [`MessagePort`][actors.MessagePort] and [`ArrayBuffer`][actors.ArrayBuffer]
        inside them transferred. The caller's ports and buffers are detached before this
        returns; `fn` gets the new ones, which belong to the child's slot across restarts.
        Every incarnation gets a fresh clone of the same arguments, holding the same ports.

        Args:
            fn: the async function to run, and run again on each restart.
            *args: its positional arguments.
            name: the child's name among its siblings (no `/`); by default the function's
                `__name__`, numbered in spawn order (`worker`, `worker-2`, ...; a number is
                never reused, even after its child stopped).
            restart: when the child is restarted after it ends.

        Returns:
            The child's handle, the same across its restarts.

        Raises:
            DataCloneError: `args` hold something that cannot be cloned. Nothing was
                detached and no child was made.
            ValueError: a live sibling already has this `name`, or it is empty or holds
                a `/`.
            TypeError: `fn` is not an async function, or `restart` is not a
                [`Restart`][actors.Restart].
            RuntimeError: the supervisor is closed.
        """
        actor, coro = self._prepare(fn, args, name, restart, starter=None)
        self._launch(actor, coro)
        return actor

    async def start(
        self,
        fn: Callable[..., Awaitable[object]],
        *args: object,
        name: str | None = None,
        restart: Restart = Restart.PERMANENT,
    ) -> Any:
        """Start `fn(*args, task_status=...)` as a child and wait for it to be ready.

        As `Nursery.start`: returns the value the child passes to `task_status.started()`,
        delivered as a message would be (cloned, ports and buffers in it transferred to the
        caller). Arguments are handled as by `spawn`. A child that crashes before calling
        `started()` is not restarted: its exception is raised here. If this call is
        cancelled before the child is ready, the child is stopped for good. A restarted
        incarnation calls `started()` too; it only marks the child ready there.

        Args:
            fn: the async function to run; it takes a `task_status` keyword argument.
            *args: its positional arguments, as for `spawn`.
            name: as for `spawn`.
            restart: as for `spawn`.

        Returns:
            The value given to `task_status.started()` (`None` if none was given).

        Raises:
            RuntimeError: the child returned before calling `started()`, or the supervisor
                is closed.
            DataCloneError: `args`, or the value given to `started()`, cannot be cloned.
            ValueError: as for `spawn`.
            TypeError: as for `spawn`.
        """
        starter: Starter = Starter()
        actor, coro = self._prepare(fn, args, name, restart, starter=starter)
        self._launch(actor, coro)
        try:
            await starter.done.wait()
        except BaseException:
            if actor._starter is starter:
                actor._starter = None
                self._stop(actor)
            raise
        if starter.error is not None:
            raise starter.error
        adopt(starter.ports, CURRENT.get())
        return starter.value

    def _prepare(
        self,
        fn: Callable[..., Awaitable[object]],
        args: tuple[object, ...],
        name: str | None,
        restart: Restart,
        starter: Starter | None,
    ) -> tuple[ActorHandle, Coroutine[Any, Any, object]]:
        if self._closed:
            raise RuntimeError(f"supervisor {self._path} is closed")
        if not callable(fn):
            raise TypeError(f"fn must be an async function, not {type(fn).__name__}")
        if not isinstance(restart, Restart):
            raise TypeError(f"restart must be a Restart, not {restart!r}")
        name, numbered = self._child_name(fn, name)
        data, moves = serialize_moving_all(args, root="args")
        shells = [shell for _, shell in moves]
        actor: ActorHandle = ActorHandle._create(
            self, fn, data, shells, name, restart, self._spawned + 1
        )
        actor._starter = starter
        actor._with_status = starter is not None
        inc = self._incarnate(actor)
        # As trio's start_soon: fn is called to get its coroutine, so a sync function runs
        # before it is found out (with the ports still in flight: nothing was committed).
        coro = self._call(actor, inc)
        if not inspect.iscoroutine(coro):
            raise TypeError(
                f"fn must be an async function; {getattr(fn, '__qualname__', fn)!r} returned "
                f"{type(coro).__name__}"
            )
        self._spawned += 1
        commit(moves)  # only now: a failed spawn detaches nothing (and uses no name)
        if numbered is not None:
            self._names[numbered[0]] = numbered[1]
        self._children[actor] = None
        self._by_name[name] = actor
        return actor, coro

    def _child_name(
        self, fn: Callable[..., object], name: str | None
    ) -> tuple[str, tuple[str, int] | None]:
        """The child's name, and for a default name the `(base, number)` it takes."""
        if name is not None:
            name = str(name)
            if not name or "/" in name:
                raise ValueError(f"an actor's name must be non-empty and without '/': {name!r}")
            if name in self._by_name:
                raise ValueError(f"supervisor {self._path} already has a child named {name!r}")
            return name, None
        base = getattr(fn, "__name__", None) or "actor"
        n = self._names.get(base, 0)
        while True:
            n += 1
            candidate = base if n == 1 else f"{base}-{n}"
            if candidate not in self._by_name:
                return candidate, (base, n)

    def _incarnate(self, actor: ActorHandle) -> Incarnation:
        actor._number += 1
        inc = Incarnation(actor, actor._number)
        actor._incarnation = inc
        actor._state = ActorState.RUNNING
        return inc

    def _call(self, actor: ActorHandle, inc: Incarnation) -> Coroutine[Any, Any, object]:
        args = actor._fresh_args()
        if actor._with_status:
            return actor._fn(*args, task_status=TaskStatus(actor))  # type: ignore[return-value]
        return actor._fn(*args)  # type: ignore[return-value]

    def _launch(
        self,
        actor: ActorHandle,
        coro: Coroutine[Any, Any, object] | None,
        after: trio.Event | None = None,
    ) -> None:
        nursery = self._nursery
        assert nursery is not None
        inc = actor._incarnation
        assert inc is not None
        if self._stopping:
            inc.scope.cancel()
        self._context.run(
            lambda: nursery.start_soon(self._run, actor, inc, coro, after, name=actor._path)
        )

    # -- running and exits ----------------------------------------------------------------

    async def _run(
        self,
        actor: ActorHandle,
        inc: Incarnation,
        coro: Coroutine[Any, Any, object] | None,
        after: trio.Event | None,
    ) -> None:
        """One incarnation's task. `after`: wait for the previous child of a group restart
        to be ready first, so restarted children start in spawn order."""
        CURRENT.set(inc)
        structlog.contextvars.bind_contextvars(actor=actor._path)
        debug("actor_started", incarnation=inc.number)
        failure: Exception | None = None
        try:
            with inc.scope:
                if after is not None:
                    await after.wait()
                if coro is None:
                    coro = self._call(actor, inc)
                if not actor._with_status:
                    inc.ready()
                await coro
        except Exception as exc:
            failure = exc
        except BaseException:
            inc.ready()
            await inc.end()
            raise
        inc.ready()
        actor._reclaim()  # first: no message may reach the dead incarnation's handlers
        await inc.end()
        self._exited(actor, inc, failure or inc.failure)

    def _exited(self, actor: ActorHandle, inc: Incarnation, failure: Exception | None) -> None:
        """An incarnation ended (not by the supervisor's own cancellation): what next."""
        actor._incarnation = None
        if failure is not None:
            actor._last_crash = failure
            _log(actor).error("actor_crashed", incarnation=inc.number, exc_info=failure)
        starter = actor._starter
        if starter is not None:  # ended before task_status.started(): Nursery.start's rule
            actor._starter = None
            starter.error = failure or RuntimeError(
                f"{actor._path} returned without calling task_status.started()"
            )
            starter.done.set()
            self._finish(actor)
            return
        if actor._stop_requested or self._stopping:
            self._finish(actor)
            return
        if actor._pending is not None:  # stopped by us for a group restart
            actor._state = ActorState.RESTARTING
            self._down(actor)
            return
        restart = actor._restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and failure is None):
            self._finish(actor)
            return
        self._restart_for(actor, failure)

    def _restart_for(self, actor: ActorHandle, failure: Exception | None) -> None:
        now = trio.current_time()
        times = self._restart_times
        times.append(now)
        while times and times[0] <= now - self._within:
            times.popleft()
        if len(times) > self._max_restarts:
            self._give_up(actor, failure)
            return
        self._restarts += 1
        recent = actor._restart_times
        if recent is None:
            recent = actor._restart_times = deque()
        while recent and recent[0] <= now - self._within:
            recent.popleft()
        delay = 0.0 if self._backoff is None else self._backoff.delay(len(recent))
        recent.append(now)
        group = Group(delay, actor, failure is not None)
        strategy = self._strategy
        if strategy is RestartStrategy.ONE_FOR_ALL:
            others = [c for c in self._children if c is not actor]
        elif strategy is RestartStrategy.REST_FOR_ONE:
            others = [c for c in self._children if c._index > actor._index]
        else:
            others = []
        self._join(group, actor)
        for other in others:
            if other._restart is Restart.TEMPORARY:
                self._stop(other)  # OTP: temporary children are never restarted
            else:
                self._join(group, other)
        if not group.waiting:
            self._due(group)

    def _join(self, group: Group, actor: ActorHandle) -> None:
        old = actor._pending
        if old is not None and old is not group:  # already pending: merge the two restarts
            for member in old.members:
                member._pending = group
            group.members |= old.members
            group.waiting |= old.waiting
            group.delay = max(group.delay, old.delay)
        actor._pending = group
        group.members.add(actor)
        actor._state = ActorState.RESTARTING  # a sibling winding down is already restarting
        inc = actor._incarnation
        if inc is not None:
            group.waiting.add(actor)
            inc.scope.cancel()

    def _down(self, actor: ActorHandle) -> None:
        group = actor._pending
        group.waiting.discard(actor)
        if not group.waiting:
            self._due(group)

    def _due(self, group: Group) -> None:
        nursery = self._nursery
        assert nursery is not None
        if group.delay > 0:
            name = f"{self._path} backoff"
            self._context.run(lambda: nursery.start_soon(self._after, group, name=name))
        else:
            self._restart_group(group)

    async def _after(self, group: Group) -> None:
        await trio.sleep(group.delay)
        self._restart_group(group)

    def _restart_group(self, group: Group) -> None:
        previous: trio.Event | None = None
        for actor in sorted(group.members, key=lambda a: a._index):
            if actor._pending is not group or actor not in self._children:
                continue  # stopped for good meanwhile
            actor._pending = None
            actor._restarts += 1
            inc = self._incarnate(actor)
            if len(group.members) > 1:
                inc.readiness = trio.Event()
            _log(actor).info(
                "actor_restarted",
                reason=group.reason
                if actor is group.trigger
                else f"{group.trigger._path} restarted",
                incarnation=inc.number,
                intensity_left=self._max_restarts - len(self._restart_times),
            )
            self._launch(actor, None, previous)
            previous = inc.readiness

    def _stop(self, actor: ActorHandle) -> None:
        """Stop `actor` for good (`ActorHandle.cancel`)."""
        if actor._state is ActorState.STOPPED:
            return
        actor._stop_requested = True
        inc = actor._incarnation
        if inc is not None:
            actor._state = ActorState.STOPPING
            inc.scope.cancel()
        else:  # down, waiting for a restart: stop it now
            self._finish(actor)

    def _finish(self, actor: ActorHandle) -> None:
        """`actor` stopped for good: close its ports, forget it, wake whoever waits."""
        if actor._state is ActorState.STOPPED:
            return
        group = actor._pending
        actor._pending = None
        actor._state = ActorState.STOPPED
        actor._incarnation = None
        actor._close_ports()
        self._children.pop(actor, None)
        if self._by_name.get(actor._name) is actor:
            del self._by_name[actor._name]
        debug("actor_stopped", actor=actor._path, incarnation=actor._number)
        if actor._done is not None:
            actor._done.set()
        if group is not None:  # it will not be restarted with its group
            group.members.discard(actor)
            if actor in group.waiting:
                group.waiting.discard(actor)
                if not group.waiting:
                    self._due(group)

    def _give_up(self, actor: ActorHandle, failure: Exception | None) -> None:
        times = len(self._restart_times) - 1
        why = f"the last for {actor._path}"
        if failure is None:  # the classic trap: a worker loop that ends, PERMANENT by default
            why += (
                ", which returned: a PERMANENT child is restarted even after a normal return;"
                " spawn children that may finish with restart=Restart.TRANSIENT"
            )
        error = TooManyRestartsError(
            f"supervisor {self._path} gave up: more than {self._max_restarts} "
            f"restart{'' if self._max_restarts == 1 else 's'} within {self._within:g}s ({why})",
            path=self._path,
            max_restarts=self._max_restarts,
            within=self._within,
        )
        error.__cause__ = failure
        self._gave_up = error
        self._finish(actor)
        logger(actor=self._path).error(
            "supervisor_gave_up",
            restarts=times,
            within=self._within,
            child=actor._path,
            exc_info=failure,
        )
        self.cancel()

    # -- stopping -------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop every child for good, and the `async with` block; it then exits quietly.

        As `Nursery.cancel_scope.cancel()`. Every child's ports are closed once it has
        finished. Idempotent.
        """
        self._stopping = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _close(self) -> None:
        """The nursery is done: every child still known stopped by cancellation."""
        self._closed = True
        for actor in list(self._children):
            self._finish(actor)
        opener = self._opener
        if opener is not None and opener._supervisors is not None:
            opener._supervisors.remove(self)

    # -- observing ------------------------------------------------------------------------

    def statistics(self) -> SupervisorStatistics:
        """A frozen snapshot of this supervisor and its children's states.

        Returns:
            The supervisor's state now; the snapshot does not change afterwards.
        """
        states = [c._state for c in self._children]
        now = trio.current_time()
        recent = sum(1 for t in self._restart_times if t > now - self._within)
        return SupervisorStatistics(
            path=self._path,
            strategy=self._strategy,
            children=len(states),
            running=states.count(ActorState.RUNNING),
            restarting=states.count(ActorState.RESTARTING),
            restarts=self._restarts,
            intensity_left=max(0, self._max_restarts - recent),
            gave_up=self._gave_up is not None,
        )

    def tree(self) -> ActorTree:
        """The live supervision tree under this supervisor; `str()` of it draws it.

        Returns:
            A snapshot: this supervisor's node, with every child (and the supervisors they
                opened) under it.
        """
        return supervisor_node(self)


def _log(actor: ActorHandle) -> Any:
    return logger(actor=actor._path)


def open_supervisor(
    *,
    strategy: RestartStrategy = RestartStrategy.ONE_FOR_ONE,
    max_restarts: int = 3,
    within: float = 5.0,
    name: str | None = None,
    backoff: Backoff | None = None,
) -> AbstractAsyncContextManager[Supervisor]:
    """Open a supervisor: a nursery whose children are actors it restarts.

    Use it as `async with open_supervisor(...) as sup:`. The block's exit waits until every
    child has stopped for good (a `PERMANENT` child never does on its own: cancel it, or the
    supervisor). `sup.cancel()` stops them all and the block exits quietly. A supervisor
    opened inside an actor takes that actor's path (and `/name` when given); a top-level one
    is `name`, or `"root"`.

    As with a nursery, an exception raised by the block's own code cancels the children
    and propagates (in an `ExceptionGroup`, as trio's strict exception groups do).

    Args:
        strategy: which children it restarts when one must be restarted.
        max_restarts: how many restarts it makes within `within` seconds before it gives
            up (0: give up at the first).
        within: the length of the restart intensity window, in seconds on trio's clock.
        name: its name in the tree (non-empty, without `/`); by default an actor's
            supervisor takes the actor's path and a top-level one is `root`.
        backoff: delays the restarts of a child that keeps crashing; `None` restarts at
            once.

    Returns:
        An async context manager (as trio's `open_nursery()`) whose `async with` gives the
            [`Supervisor`][actors.Supervisor], to [`spawn`][actors.Supervisor.spawn] and
            [`start`][actors.Supervisor.start] children with.

    Raises:
        TooManyRestartsError: more than `max_restarts` restarts within `within` seconds.
            The supervisor cancelled the block, stopped every child and closed their
            ports; then the `async with` raises this, chained to the last crash.
        TypeError: `strategy` is not a [`RestartStrategy`][actors.RestartStrategy],
            `max_restarts` is not an `int`, or `backoff` is neither a
            [`Backoff`][actors.Backoff] nor `None` (raised on entering the block).
        ValueError: `max_restarts` is negative, `within` is not a positive, finite
            number, or `name` is empty or holds `/` (raised on entering the block).
    """
    return _supervising(strategy, max_restarts, within, name, backoff)


@asynccontextmanager
async def _supervising(
    strategy: RestartStrategy,
    max_restarts: int,
    within: float,
    name: str | None,
    backoff: Backoff | None,
) -> AsyncIterator[Supervisor]:
    if not isinstance(strategy, RestartStrategy):
        raise TypeError(f"strategy must be a RestartStrategy, not {strategy!r}")
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int):
        raise TypeError(f"max_restarts must be an int, not {max_restarts!r}")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise TypeError(f"backoff must be a Backoff or None, not {backoff!r}")
    if max_restarts < 0 or not math.isfinite(within) or within <= 0:
        raise ValueError("max_restarts must be >= 0 and within a positive number of seconds")
    inc = CURRENT.get()
    opener = None if inc is None else inc.actor
    if name is not None:
        name = str(name)
        if not name or "/" in name:
            raise ValueError(f"a supervisor's name must be non-empty and without '/': {name!r}")
    if opener is None:
        path = "root" if name is None else name
    else:
        path = opener._path if name is None else f"{opener._path}/{name}"
    sup: Supervisor = Supervisor._create(
        strategy, max_restarts, float(within), backoff, path, opener
    )
    if opener is not None:
        if opener._supervisors is None:
            opener._supervisors = []
        opener._supervisors.append(sup)
    try:
        async with trio.open_nursery() as nursery:
            sup._nursery = nursery
            yield sup
    finally:
        sup._close()
    if sup._gave_up is not None:
        raise sup._gave_up
