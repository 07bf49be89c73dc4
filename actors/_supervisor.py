"""Supervisors: nurseries that restart their children after Erlang/OTP's strategies.

The rules (`docs/explanation/supervision.md` states them for users):

- A child stops *for good* when it returns and is not `PERMANENT`, crashes and is
  `TEMPORARY`, is cancelled (`ActorHandle.cancel`, `Supervisor.cancel`, a cancel scope around
  the supervisor, an exception in the block), or the supervisor gives up. Only then are the
  ports it was spawned with closed; every incarnation's own ports are closed when that
  incarnation ends.
- Otherwise it is restarted, with its siblings as the strategy says. One crash is one restart
  for the intensity count, however many children it restarts.
- More than `max_restarts` restarts within `within` seconds: the supervisor gives up.
- Children begin in spawn order, and are stopped in reverse, one at a time, each within its
  `shutdown` deadline.

A child runs in a shielded cancel scope of its own: only its supervisor's driver (`_driver`)
cancels it, so that a cancellation from outside becomes an ordered shutdown. Every child task
is started in a copy of the context the supervisor was opened in, so a child never inherits
the context of whoever called `spawn` or of the incarnation it replaces.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import types
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVarTuple, final

import structlog
import trio

from ._actor import ActorHandle, ActorState, Starter, TaskStatus
from ._clone import commit, serialize_moving_all
from ._driver import Driver
from ._exceptions import TooManyRestartsError
from ._log import debug, logger
from ._owner import CURRENT, Incarnation, adopt
from ._ports import _NoPublicConstructor
from ._restart import Backoff, Restart, RestartStrategy, SupervisorStatistics
from ._threads import get_ident, wrong_thread
from ._tree import ActorTree, supervisor_node

DEFAULT_SHUTDOWN = 5.0
"""OTP's default `shutdown` for a worker: 5 seconds to end once cancelled."""

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
        "_closed_at",
        "_context",
        "_driver",
        "_gave_up",
        "_inner",
        "_last",
        "_max_restarts",
        "_names",
        "_nursery",
        "_opener",
        "_path",
        "_restart_times",
        "_restarts",
        "_spawned",
        "_strategy",
        "_thread",
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
        self._closed = False
        self._closed_at: float | None = None  # when its block ended (statistics() after it)
        self._gave_up: TooManyRestartsError | None = None
        self._driver = Driver(self)
        self._last: Incarnation | None = None  # launched last: the next child begins after it
        self._inner = False  # runs a process actor's incarnation: the parent logs its crash
        self._thread = get_ident()  # the thread of its run: the only one that may change it

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
        shutdown: float | None = DEFAULT_SHUTDOWN,
        process: bool = False,
    ) -> ActorHandle:
        """Start `fn(*args)` as a child actor, like `Nursery.start_soon`; return its handle.

        `args` reach `fn` as `post_message` would deliver them: structured-cloned, with
        every [`MessagePort`][actors.MessagePort] and [`ArrayBuffer`][actors.ArrayBuffer]
        inside them transferred. The caller's ports and buffers are detached before this
        returns; `fn` gets the new ones, which belong to the child's slot across restarts.
        Every incarnation gets a fresh clone of the same arguments, holding the same ports.
        Children begin in spawn order: `fn` starts running after the previous child began.

        Args:
            fn: the async function to run, and run again on each restart. It is checked
                before anything else happens: a plain function is refused without being
                called.
            *args: its positional arguments.
            name: the child's name among its siblings (no `/`); by default the function's
                `__name__`, numbered in spawn order (`worker`, `worker-2`, ...; a number is
                never reused, even after its child stopped).
            restart: when the child is restarted after it ends.
            shutdown: how long, in seconds, the child may take to end once its supervisor
                cancels it (OTP's `shutdown`, 5 seconds by default); `None` waits as long as
                it takes (OTP's `infinity`, for a child that supervises others), `0` does not
                wait (OTP's `brutal_kill`). A child still running at its deadline is given
                up on: see [Shutdown](../explanation/supervision.md#shutdown); a process
                actor is killed (SIGKILL).
            process: run the child in a process of its own, with its own `trio.run`: `fn`
                must then be a module-level async function the child can import. Everything
                else holds as for a child here; see
                [Processes](../explanation/processes.md).

        Returns:
            The child's handle, the same across its restarts.

        Raises:
            DataCloneError: `args` hold something that cannot be cloned. Nothing was
                detached and no child was made.
            ValueError: a live sibling already has this `name`, or it is empty or holds
                a `/`; or `shutdown` is negative or not a number.
            TypeError: `fn` is not an async function (or is a coroutine: pass the function
                and its arguments, not `fn(...)`), `restart` is not a
                [`Restart`][actors.Restart], or `shutdown` is neither a number nor `None`.
            RuntimeError: the supervisor is closed or stopping, or this was called from a
                thread outside its trio run (use `trio.from_thread.run_sync`).
        """
        actor, coro = self._prepare(fn, args, name, restart, shutdown, None, process)
        self._launch(actor, actor._incarnation, coro, self._last, "began")
        return actor

    async def start(
        self,
        fn: Callable[..., Awaitable[object]],
        *args: object,
        name: str | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = DEFAULT_SHUTDOWN,
        process: bool = False,
    ) -> Any:
        """Start `fn(*args, task_status=...)` as a child and wait for it to be ready.

        As `Nursery.start`: returns the value the child passes to `task_status.started()`,
        delivered as a message would be (cloned, ports and buffers in it transferred to the
        caller). Arguments are handled as by `spawn`. A child that crashes before calling
        `started()` is not restarted: its exception is raised here. If this call is
        cancelled before the child is ready, the child is stopped for good at once (ahead
        of any ordered shutdown). A restarted
        incarnation calls `started()` too; it only marks the child ready there.

        Args:
            fn: the async function to run; it takes a `task_status` keyword argument.
            *args: its positional arguments, as for `spawn`.
            name: as for `spawn`.
            restart: as for `spawn`.
            shutdown: as for `spawn`.
            process: as for `spawn`.

        Returns:
            The value given to `task_status.started()` (`None` if none was given).

        Raises:
            RuntimeError: the child ended before calling `started()` without raising (it
                returned, or was stopped: the message says by what), or the supervisor is
                closed or stopping, or this was called from another thread's trio run.
            DataCloneError: `args`, or the value given to `started()`, cannot be cloned.
            ValueError: as for `spawn`.
            TypeError: as for `spawn`.
        """
        starter: Starter = Starter()
        actor, coro = self._prepare(fn, args, name, restart, shutdown, starter, process)
        self._launch(actor, actor._incarnation, coro, self._last, "began")
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
        shutdown: float | None,
        starter: Starter | None,
        process: bool = False,
    ) -> tuple[ActorHandle, Coroutine[Any, Any, object] | None]:
        if self._thread != get_ident():
            call = "start" if starter is not None else "spawn"
            raise wrong_thread(
                f"Supervisor.{call}()",
                "supervisor",
                f"call it through trio.from_thread.{'run' if call == 'start' else 'run_sync'}"
                f"(sup.{call}, ...); nothing was started or detached",
            )
        if self._closed:
            raise RuntimeError(f"supervisor {self._path} is closed")
        if self._driver.stopping:
            raise RuntimeError(f"supervisor {self._path} is stopping: it starts no child")
        located = None
        if process:  # first: a lambda or a closure is told how to make it work in a process
            from ._process.spawn import where  # the process layer sits above this one

            located = where(fn)
        _check_async(fn)
        if not isinstance(restart, Restart):
            raise TypeError(f"restart must be a Restart, not {restart!r}")
        shutdown = _checked_shutdown(shutdown)
        name, numbered = self._child_name(fn, name)
        data, moves = serialize_moving_all(args, root="args")
        shells = [shell for _, shell in moves]
        actor: ActorHandle = ActorHandle._create(
            self, fn, data, shells, name, restart, self._spawned + 1
        )
        actor._shutdown = shutdown
        actor._starter = starter
        actor._with_status = starter is not None
        actor._process = located
        inc = self._incarnate(actor)
        # An async function only makes its coroutine here: no code of it runs, but a wrong
        # number of arguments is a TypeError now, before anything moved. (A process actor's
        # function is called in its process.)
        coro = None if process else self._call(actor, inc)
        if coro is not None and not inspect.iscoroutine(coro):
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
        base = getattr(fn, "__name__", None)
        if not isinstance(base, str) or not base or "/" in base:
            base = "actor"  # a name must be a non-empty str without '/'
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
        inc.slot = actor._current
        if actor._process is not None:
            from ._process.spawn import run_process

            return run_process(self, actor, inc)
        args = actor._fresh_args()
        if actor._with_status:
            return actor._fn(*args, task_status=TaskStatus(actor))  # type: ignore[return-value]
        return actor._fn(*args)  # type: ignore[return-value]

    def _launch(
        self,
        actor: ActorHandle,
        inc: Incarnation | None,
        coro: Coroutine[Any, Any, object] | None,
        after: Incarnation | None,
        milestone: str,
    ) -> None:
        """Start `inc`'s task; it begins once `after` reached `milestone` (if given)."""
        assert inc is not None
        nursery = self._nursery
        assert nursery is not None
        if after is not None and getattr(after, milestone):
            after = None
        self._last = inc
        self._context.run(
            lambda: nursery.start_soon(
                self._run, actor, inc, coro, after, milestone, name=actor._path
            )
        )

    # -- running and exits ----------------------------------------------------------------

    async def _run(
        self,
        actor: ActorHandle,
        inc: Incarnation,
        coro: Coroutine[Any, Any, object] | None,
        after: Incarnation | None,
        milestone: str,
    ) -> None:
        """One incarnation's task, in its shielded scope: only the driver cancels it."""
        CURRENT.set(inc)
        structlog.contextvars.bind_contextvars(actor=actor._path)
        inc.task = trio.lowlevel.current_task()
        failure: BaseException | None = None
        try:
            with inc.scope:
                if after is not None:
                    await after.reach(milestone)
                inc.mark("began")
                if not inc.halted:  # stopped before it began: its function never runs
                    debug("actor_started", incarnation=inc.number)
                    if coro is None:
                        coro = self._call(actor, inc)
                    if not actor._with_status:
                        inc.mark("ready")
                    awaited, coro = coro, None
                    await awaited
        except BaseException as exc:  # a crash; or a KeyboardInterrupt, a SystemExit, ...
            failure = exc
        finally:
            if coro is not None:  # stopped before it began: its coroutine never ran
                coro.close()
        self._ended(actor, inc)
        if inc.killed:  # given up on at its deadline: the driver has handled its end; its
            await inc.end()  # handlers still run, though, and nothing outlives the block
            return
        failure = failure or inc.failure
        fatal = failure if failure is not None and not isinstance(failure, Exception) else None
        crash = failure if isinstance(failure, Exception) else None
        if fatal is not None:  # not a crash: it goes up, as from a nursery, and stops the tree
            actor._stop_requested = True  # not restarted; the shutdown it starts skips it
        elif not (actor._stop_requested or self._driver.stopping):
            actor._reclaim()  # the slot's ports move on, queues and all, to the next one
        await inc.end()
        if inc.killed:
            return
        if crash is not None and not self._inner:
            logger(actor=actor._path).error("actor_crashed", incarnation=inc.number, exc_info=crash)
        inc.mark("finished")
        self._driver.exited(actor, inc, crash)
        if fatal is not None:
            raise fatal

    @staticmethod
    def _ended(actor: ActorHandle, inc: Incarnation) -> None:
        """`inc`'s function is over: its handlers get nothing more, its waiters go on."""
        inc.halted = True
        inc.mark("began")
        inc.mark("ready")

    def _spawn_here(
        self,
        fn: Callable[..., Awaitable[object]],
        args: tuple[object, ...],
        name: str,
        number: int,
        with_status: bool,
    ) -> tuple[ActorHandle, Starter | None]:
        """In a process actor's process: run its incarnation `number` (a TEMPORARY child of
        this inner supervisor, with no deadline: the parent's is the one that counts)."""
        starter = Starter() if with_status else None
        actor, coro = self._prepare(fn, args, name, Restart.TEMPORARY, None, starter)
        inc = actor._incarnation
        assert inc is not None
        actor._number = inc.number = number
        self._launch(actor, inc, coro, self._last, "began")
        return actor, starter

    def _stop(self, actor: ActorHandle) -> None:
        """Stop `actor` for good (`ActorHandle.cancel`)."""
        if self._thread != get_ident():
            raise wrong_thread(
                "ActorHandle.cancel()",
                "actor",
                "call it through trio.from_thread.run_sync(handle.cancel); nothing changed",
            )
        self._driver.stop(actor)

    def _finish(self, actor: ActorHandle, error: BaseException | None = None) -> None:
        """`actor` stopped for good: close its ports, forget it, wake whoever waits.

        A `Supervisor.start()` still waiting for it raises `error`, or says why it stopped.
        """
        if actor._state is ActorState.STOPPED:
            return
        actor._state = ActorState.STOPPED
        actor._incarnation = None
        actor._close_ports()
        self._children.pop(actor, None)
        if self._by_name.get(actor._name) is actor:
            del self._by_name[actor._name]
        debug("actor_stopped", actor=actor._path, incarnation=actor._number)
        starter = actor._starter
        if starter is not None:
            actor._starter = None
            starter.error = error or RuntimeError(
                f"{actor._path} was stopped before it called task_status.started()"
            )
            starter.done.set()
        if actor._done is not None:
            actor._done.set()

    # -- stopping -------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop every child for good, and the `async with` block; it then exits quietly.

        As `Nursery.cancel_scope.cancel()`: the block's body is cancelled at once. The
        children are stopped one at a time, the last spawned first, each within its
        `shutdown` deadline; every child's ports are closed once it has finished. Idempotent.

        Raises:
            RuntimeError: called from a thread outside the trio run that owns the supervisor
                (call it through `trio.from_thread.run_sync(sup.cancel)`); nothing changed.
        """
        if self._thread != get_ident():
            raise wrong_thread(
                "Supervisor.cancel()",
                "supervisor",
                "call it through trio.from_thread.run_sync(sup.cancel); nothing changed",
            )
        self._driver.shut_down()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _close(self) -> None:
        """The block is over: nothing can be spawned any more."""
        self._closed = True
        self._closed_at = trio.current_time()
        for actor in list(self._children):  # only if the driver never ran (a failed entry)
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
        now = self._closed_at if self._closed_at is not None else trio.current_time()
        recent = sum(1 for t in self._restart_times if t >= now - self._within)
        return SupervisorStatistics(
            path=self._path,
            strategy=self._strategy,
            children=len(states),
            running=states.count(ActorState.RUNNING),
            restarting=states.count(ActorState.RESTARTING),
            stopping=states.count(ActorState.STOPPING),
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


def _check_async(fn: object) -> None:
    """Refuse what is not an async function, without calling it (its code must not run)."""
    if type(fn) is types.FunctionType and fn.__code__.co_flags & inspect.CO_COROUTINE:
        return  # the common case, at the cost of two attribute reads
    if inspect.iscoroutine(fn):
        fn.close()  # nobody will await it: no "never awaited" warning on top of this error
        raise TypeError(
            "spawn and start take an async function and its arguments, not a coroutine: "
            "write spawn(fn, *args), not spawn(fn(*args))"
        )
    if not callable(fn):
        raise TypeError(f"fn must be an async function, not {type(fn).__name__}")
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    # an object whose class (or a base) has an async __call__
    call = next(
        (k.__dict__["__call__"] for k in type(target).__mro__ if "__call__" in k.__dict__), None
    )
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(call):
        return
    if inspect.isroutine(target) or inspect.isclass(target):
        raise TypeError(
            f"fn must be an async function (async def); {getattr(fn, '__qualname__', fn)!r} "
            "is a plain callable, so it was not called"
        )
    # Anything else (a mock, a wrapper object) is called by spawn and its result checked.


def _checked_shutdown(shutdown: object) -> float | None:
    """`shutdown` as a float, or `None` for no deadline (infinity is `None`)."""
    if shutdown is None or shutdown is DEFAULT_SHUTDOWN:
        return shutdown
    if isinstance(shutdown, bool) or not isinstance(shutdown, int | float):
        raise TypeError(f"shutdown must be a number of seconds or None, not {shutdown!r}")
    if shutdown != shutdown or shutdown < 0:  # NaN, or negative
        raise ValueError(f"shutdown must be >= 0 seconds (or None), not {shutdown!r}")
    try:
        seconds = float(shutdown)
    except OverflowError:  # an int beyond any float: no deadline, as infinity
        return None
    return None if math.isinf(seconds) else seconds


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
        if any(other._path == path for other in opener._supervisors):
            raise ValueError(
                f"{opener._path} already has an open supervisor at {path!r}: give this one"
                " a name (open_supervisor(name=...)) so that every path in the tree is unique"
            )
        opener._supervisors.append(sup)
    async with _running(sup):
        yield sup


def open_inner_supervisor(path: str) -> AbstractAsyncContextManager[Supervisor]:
    """The supervisor that runs one incarnation of a process actor in its own process: it has
    the path of the actor's supervisor in the parent, and leaves crash logs to the parent."""
    sup: Supervisor = Supervisor._create(RestartStrategy.ONE_FOR_ONE, 0, 1.0, None, path, None)
    sup._inner = True
    return _running(sup)


@asynccontextmanager
async def _running(sup: Supervisor) -> AsyncIterator[Supervisor]:
    """The block of an open supervisor: its nursery, its driver, and its ordered shutdown."""
    path = sup._path
    driver = sup._driver
    try:
        async with trio.open_nursery() as nursery:
            sup._nursery = nursery
            nursery.start_soon(driver.run, name=f"{path} (supervisor)")
            try:
                yield sup
                driver.body_done()
                await driver.done.wait()
            except BaseException:
                # The body raised, or was cancelled (sup.cancel(), a give-up, a scope around
                # the block): stop every child in order, however long their deadlines take.
                driver.shut_down()
                with trio.CancelScope(shield=True):
                    await driver.done.wait()
                raise
    finally:
        sup._close()
    if sup._gave_up is not None:
        raise sup._gave_up
