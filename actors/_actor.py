"""ActorHandle: one child slot of a supervisor, alive across the restarts of its actor.

A slot holds what survives a crash: the function, the arguments as `spawn` cloned them, and
the ports and buffers `spawn` transferred to it. Each run of the function is an
`Incarnation` (`_owner`) with the ports *it* made or received, closed when it ends. The
slot's own ports are closed only when the slot stops for good.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, final

import attrs
import trio

from ._clone import ATOMIC, clone_replacing, commit, serialize_moving_all
from ._owner import CURRENT, Incarnation
from ._ports import MessagePort, _NoPublicConstructor
from ._transfer import Transferable

if TYPE_CHECKING:
    from ._restart import Restart
    from ._supervisor import Supervisor

__all__ = ["ActorHandle", "ActorState", "ActorStatistics", "Starter", "TaskStatus", "current_actor"]


@final
class ActorState(enum.Enum):
    """Where an actor is in its life (`ActorHandle.statistics().state`)."""

    RUNNING = "running"
    """An incarnation is scheduled or running: the state from the moment `spawn` (or a
    restart) schedules its task, before that task has necessarily run."""
    RESTARTING = "restarting"
    """Being restarted: a sibling caught in a group restart whose incarnation is winding
    down, or an actor that is down and waits for its siblings to stop or for its back-off."""
    STOPPING = "stopping"
    """Asked to stop for good; its incarnation is still winding down."""
    STOPPED = "stopped"
    """Stopped for good: its ports are closed and it will never run again."""


@final
@attrs.frozen
class ActorStatistics:
    """A snapshot of one actor, from [`ActorHandle.statistics()`][actors.ActorHandle.statistics]."""

    name: str
    """The name given to `spawn` (or the function's name)."""
    path: str
    """Where it sits in the supervision tree, e.g. `root/db/writer`."""
    state: ActorState
    """Running, restarting, stopping or stopped."""
    incarnation: int
    """Which run of the function this is: 1 for the first, 2 after one restart, ..."""
    restarts: int
    """How many times the supervisor has restarted it."""
    ports: int
    """Open ports it owns: those it was spawned with and those its incarnation made or got.
    For a process actor, only those in this process: the ports it was spawned with (they
    stay here, see the processes page); the ports made or got in its process are not
    counted."""
    queued: int
    """Messages waiting at the ports it was spawned with."""
    last_crash: Exception | None
    """The exception of its last crash, or `None` if it never crashed."""


@final
class ActorHandle(metaclass=_NoPublicConstructor):
    """A child of a supervisor: returned by [`Supervisor.spawn`][actors.Supervisor.spawn], and
    by [`current_actor()`][actors.current_actor].

    The handle stands for the child *slot*: it stays the same across restarts, while
    `incarnation` counts the runs of the function. It has no public constructor.
    """

    _made_by = "handles come from Supervisor.spawn() and current_actor()"
    __slots__ = (
        "__weakref__",
        "_args",
        "_current",
        "_done",
        "_fn",
        "_group",
        "_incarnation",
        "_index",
        "_last_crash",
        "_name",
        "_number",
        "_path",
        "_pid",
        "_ports_home",
        "_process",
        "_restart",
        "_restart_times",
        "_restarts",
        "_shells",
        "_shutdown",
        "_starter",
        "_state",
        "_stop_requested",
        "_supervisor",
        "_supervisors",
        "_with_status",
    )

    def __init__(
        self,
        supervisor: Supervisor,
        fn: Callable[..., Awaitable[object]],
        args: tuple[Any, ...],
        shells: list[Transferable],
        name: str,
        restart: Restart,
        index: int,
    ) -> None:
        self._supervisor = supervisor
        self._fn = fn
        self._args = args  # as spawn cloned them; every incarnation gets a fresh clone
        self._shells = shells  # what spawn transferred, as they sit in _args
        self._current: list[Transferable] = shells  # the objects standing for them now
        self._name = name
        self._path = f"{supervisor._path}/{name}"
        self._restart = restart
        self._index = index  # spawn order
        self._number = 0
        self._incarnation: Incarnation | None = None
        self._state = ActorState.RUNNING
        self._restarts = 0
        self._restart_times: deque[float] | None = None
        self._last_crash: Exception | None = None
        self._stop_requested = False
        self._group: Any = None  # the pending group restart it is part of (`_driver.Group`)
        self._shutdown: float | None = 5.0  # seconds to end once cancelled; None: no limit
        self._process: Any = None  # a process actor: where its function is (`_process.spawn`)
        self._pid: int | None = None  # a process actor's process, while it runs
        # Where the slot's ports go when it stops for good, instead of closing (in a process
        # actor's process: home, to the supervisor in the parent process).
        self._ports_home: Callable[[list[Transferable]], None] | None = None
        self._starter: Any = None  # the waiting Supervisor.start() call, until started()
        self._with_status = False  # started by Supervisor.start(): fn takes task_status
        self._done: trio.Event | None = None
        self._supervisors: list[Supervisor] | None = None  # opened inside it (for tree())

    def __repr__(self) -> str:
        return f"<ActorHandle {self._path} {self._state.value} incarnation={self._number}>"

    @property
    def name(self) -> str:
        """The child's name among its siblings."""
        return self._name

    @property
    def path(self) -> str:
        """The names from the root supervisor down to this child, joined by `/`."""
        return self._path

    @property
    def incarnation(self) -> int:
        """The current (or last) run of the function: 1 at first, one more per restart."""
        return self._number

    @property
    def restart(self) -> Restart:
        """When the supervisor restarts this child: `PERMANENT`, `TRANSIENT`, `TEMPORARY`."""
        return self._restart

    @property
    def pid(self) -> int | None:
        """The process id of a process actor's current incarnation (`None` while it is down,
        and for an actor that runs in this process)."""
        return self._pid

    @property
    def shutdown(self) -> float | None:
        """Seconds it may take to end once cancelled (`None`: no limit), as given to `spawn`."""
        return self._shutdown

    def cancel(self) -> None:
        """Stop this child for good, whatever its restart type. Idempotent; never blocks.

        Its running incarnation is cancelled at once; when it has finished (or its
        `shutdown` deadline has passed), every port the child owns is closed (its peers see
        `onclose` / `EndOfChannel`) and `wait()` returns.

        Raises:
            RuntimeError: called from a thread outside the trio run that owns the actor
                (call it through `trio.from_thread.run_sync(handle.cancel)`); nothing
                changed.
        """
        self._supervisor._stop(self)

    async def wait(self) -> None:
        """Wait until this child has stopped for good (returns at once if it has)."""
        if self._state is not ActorState.STOPPED:
            if self._done is None:
                self._done = trio.Event()
            await self._done.wait()
        else:
            await trio.lowlevel.checkpoint()

    def statistics(self) -> ActorStatistics:
        """A frozen snapshot of this child: state, incarnation, restarts, ports, queue.

        Returns:
            The child's state now; the snapshot does not change afterwards.
        """
        slot_ports = [p for p in self._current if type(p) is MessagePort and p._core is not None]
        inc = self._incarnation
        return ActorStatistics(
            name=self._name,
            path=self._path,
            state=self._state,
            incarnation=self._number,
            restarts=self._restarts,
            ports=len(slot_ports) + (0 if inc is None else inc.open_ports()),
            queued=sum(p.statistics().queued for p in slot_ports),
            last_crash=self._last_crash,
        )

    # -- used by the supervisor -----------------------------------------------------------

    def _fresh_args(self) -> tuple[Any, ...]:
        """A new clone of the spawn arguments holding the slot's current ports and buffers."""
        args, shells, current = self._args, self._shells, self._current
        if len(args) == len(shells) and all(a is s for a, s in zip(args, shells, strict=True)):
            return tuple(current) if current is not shells else args  # only ports and buffers
        if all(type(a) in ATOMIC for a in args):
            return args
        memo: dict[int, object] = {id(s): now for s, now in zip(shells, current, strict=True)}
        return clone_replacing(args, memo, "args")  # type: ignore[return-value]

    def _reclaim(self) -> None:
        """The incarnation ended: move the slot's ports and buffers to fresh objects.

        The dead incarnation's objects are detached (its listeners never fire again), and
        the next one gets the same queues, not started, as if they had just been transferred.
        """
        current = []
        for obj in self._current:
            if obj._transfer_refusal() is None:
                shell = obj._transfer_shell()
                obj._transfer_commit(shell)
                obj = shell
            current.append(obj)
        self._current = current

    def _close_ports(self) -> None:
        if self._ports_home is not None:
            self._ports_home(self._current)
            return
        for obj in self._current:
            if type(obj) is MessagePort:
                obj.close()


@final
class Starter:
    """The `Supervisor.start()` call waiting for its child's `task_status.started()`."""

    __slots__ = ("done", "error", "ports", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.ports: list[MessagePort] = []
        self.error: BaseException | None = None


@final
class TaskStatus(trio.TaskStatus[Any]):
    """The `task_status` of a child run by `Supervisor.start()`.

    `started(value)` hands `value` to the starter as a message would be: cloned, with
    every port and buffer in it transferred. In a restarted incarnation it only marks the
    child ready; the value is dropped (and ports in it closed).
    """

    __slots__ = ("_actor",)

    def __init__(self, actor: ActorHandle) -> None:
        self._actor = actor

    def started(self, value: Any = None) -> None:
        starter = self._actor._starter
        inc = self._actor._incarnation
        if inc is not None:
            inc.mark("ready")
        if starter is None:
            return  # a restart: nobody waits; ports in value still belong to the incarnation
        data, moves = serialize_moving_all(value, root="started value")
        commit(moves)
        self._actor._starter = None
        starter.value = data
        starter.ports = [shell for _, shell in moves if type(shell) is MessagePort]
        starter.done.set()


def current_actor() -> ActorHandle:
    """The handle of the actor whose task (or message handler) calls this.

    A task the actor started, and a handler of a port it set up, count as the actor's.

    Returns:
        The handle of the running actor (the same object `spawn` returned).

    Raises:
        RuntimeError: called outside an actor.
    """
    inc = CURRENT.get()
    if inc is None:
        raise RuntimeError("current_actor() was called outside an actor")
    return inc.actor
