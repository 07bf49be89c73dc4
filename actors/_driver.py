"""The supervisor's driver: the one task that decides what happens when children end.

OTP's supervisor is a process that handles one exit signal at a time; this is that process.
Everything that decides a child's fate runs here, one event at a time, and synchronously:
exits, `handle.cancel()`, restarts with their strategy and intensity, back-off, and the
ordered shutdown. An event is handled at once in the task that reports it (the child that
ended, the task that called `cancel()`), so a restart happens at the end of the crashed
child's task, before anything else runs; a guard keeps the handling from re-entering itself.
Time is the driver task's job (`run()`): it sleeps until the next timer (a back-off that is
due, a shutdown deadline that passed) and handles it. Nothing is launched once it is
stopping.

The rules (`docs/explanation/supervision.md` states them for users):

- Children are stopped one at a time, the last spawned first, each waited for within its
  `shutdown` deadline: by a group restart (its members), by a shutdown (every child).
- A child still running `shutdown` seconds after it was cancelled is given up on: logged
  (`actor_shutdown_timeout`), its handlers get nothing more, its incarnation's ports are
  closed and its slot's ports move on, and the driver goes on as if it had ended. Its task
  goes on until it yields to the cancellation (trio cannot kill a task); the supervisor's
  block exits only after it.
- Restarts are counted in a window that includes both ends (OTP: `T >= Now - Period`).
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import pathlib
import sys
from collections import deque
from typing import TYPE_CHECKING, Any, Final, final

import trio

from ._actor import ActorHandle, ActorState
from ._exceptions import TooManyRestartsError
from ._log import logger, summary
from ._owner import Incarnation
from ._restart import Restart, RestartStrategy

if TYPE_CHECKING:
    from ._supervisor import Supervisor

__all__ = ["Driver", "Group"]

_order = itertools.count()


@final
class Group:
    """A restart of several children: its members stop, last spawned first, then all start
    again in spawn order (after the back-off). A restart of one child is a group of one."""

    __slots__ = ("delay", "due", "members", "order", "reason", "timer", "trigger")

    def __init__(self, delay: float, trigger: ActorHandle, crashed: bool) -> None:
        self.members: set[ActorHandle] = set()
        self.order: list[ActorHandle] | None = None  # members to stop, the next one last
        self.delay = delay
        self.due: float | None = None  # when every member is down: the time they start again
        self.trigger = trigger
        self.reason = "crashed" if crashed else "returned"
        self.timer: list[Any] | None = None  # its back-off's entry in the driver's timers


_EXIT: Final = "exit"
_STOP: Final = "stop"
_DEADLINE: Final = "deadline"
_DUE: Final = "due"


@final
class Driver:
    """The decisions of one supervisor, made in its driver task (`run()`)."""

    __slots__ = (
        "closing",
        "dead",
        "done",
        "groups",
        "handling",
        "inbox",
        "kick",
        "order",
        "stopping",
        "sup",
        "timers",
        "unready",
        "waking",
    )

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.inbox: deque[tuple[str, ActorHandle, Incarnation | None, Exception | None]] = deque()
        # [when, order, kind, what]: a heap; `what` is None once the timer is cancelled
        self.timers: list[list[Any]] = []
        self.dead = 0  # cancelled timers still in the heap
        self.groups: dict[Group, None] = {}  # pending group restarts, oldest first
        self.unready: dict[Group, None] = {}  # those whose members are still stopping
        self.kick = trio.Event()
        self.done = trio.Event()
        self.stopping = False  # stopping every child for good: nothing is launched any more
        self.closing = False  # the block's body is over: stop when no child is left
        self.handling = False  # in _handle(): a new event waits for the loop there
        self.order: list[ActorHandle] | None = None  # the shutdown's children, the next last
        self.waking = math.inf  # when the driver task wakes up next, unless kicked

    # -- what other tasks tell the driver (synchronous, never blocks) ------------------------

    def exited(self, actor: ActorHandle, inc: Incarnation, failure: Exception | None) -> None:
        """An incarnation's task is done with it (its ports are closed or moved on)."""
        self.inbox.append((_EXIT, actor, inc, failure))
        self._handle()

    def stop(self, actor: ActorHandle) -> None:
        """Stop `actor` for good (`ActorHandle.cancel`): it is cancelled at once."""
        if actor._state is ActorState.STOPPED or actor._stop_requested:
            return
        actor._stop_requested = True
        inc = actor._incarnation
        if inc is not None:
            actor._state = ActorState.STOPPING
            inc.stop()
        self.inbox.append((_STOP, actor, inc, None))
        self._handle()

    def shut_down(self) -> None:
        """Stop every child for good, in order, then end (sup.cancel, a give-up, the body)."""
        if not self.stopping:
            self.stopping = True
            self._handle()

    def body_done(self) -> None:
        """The block's body is over: end once every child has stopped for good."""
        self.closing = True
        self._handle()

    @trio.lowlevel.enable_ki_protection  # a Ctrl-C waits for a checkpoint, not a half-decision
    def _handle(self) -> None:
        """Handle what is pending now, unless this is already under way further up."""
        if self.handling:
            return
        self.handling = True
        try:
            self._handle_all()
        finally:
            self.handling = False
        if self._over() or (self.timers and self.timers[0][0] < self.waking):
            self.kick.set()  # the driver task must end, or wake up earlier

    def _over(self) -> bool:
        return (self.stopping or self.closing) and not self.sup._children

    # -- the task --------------------------------------------------------------------------

    async def run(self) -> None:
        """Handle events until every child has stopped for good and the block is over."""
        try:
            with trio.CancelScope(shield=True):  # it stops when told to, never by a cancel
                while True:
                    self._handle()
                    if self._over():
                        break
                    self.waking = self.timers[0][0] if self.timers else math.inf
                    with trio.move_on_at(self.waking):
                        await self.kick.wait()
                    if self.kick.is_set():
                        self.kick = trio.Event()
        except BaseException as exc:  # a bug here must not leave shielded children behind
            if not isinstance(exc, trio.Cancelled):
                logger(actor=self.sup._path).error("supervisor_failed", exc_info=exc)
            for actor in self.sup._children:
                if actor._incarnation is not None:
                    actor._incarnation.stop()
            raise
        finally:
            self.sup._closed = True
            self.done.set()

    def _handle_all(self) -> None:
        """Handle every event and every due timer, then take the ordered stops forward."""
        inbox, timers = self.inbox, self.timers
        now = trio.current_time()
        while inbox or (timers and timers[0][0] <= now):
            if inbox:
                kind, actor, inc, failure = inbox.popleft()
                if kind is _EXIT:
                    assert inc is not None
                    self._on_exit(actor, inc, failure)
                else:
                    self._on_stop(actor)
            else:
                _, _, kind, what = heapq.heappop(timers)
                if what is None:  # cancelled
                    self.dead -= 1
                elif kind is _DEADLINE:
                    what[1].timer = None
                    self._on_deadline(*what)
                elif not self.stopping:  # a shutdown launches nothing
                    what.timer = None
                    self._launch_group(what)
            self._advance()
        self._advance()

    def _at(self, when: float, kind: str, what: object) -> list[Any]:
        entry = [when, next(_order), kind, what]
        heapq.heappush(self.timers, entry)
        return entry

    def _cancel_timer(self, entry: list[Any] | None) -> None:
        """Forget a timer (its objects with it); the heap is compacted when mostly dead."""
        if entry is None or entry[3] is None:
            return
        entry[3] = None
        self.dead += 1
        timers = self.timers
        if self.dead > 64 and 2 * self.dead > len(timers):
            timers[:] = [t for t in timers if t[3] is not None]
            heapq.heapify(timers)
            self.dead = 0

    # -- events ----------------------------------------------------------------------------

    def _on_exit(self, actor: ActorHandle, inc: Incarnation, failure: Exception | None) -> None:
        if actor._incarnation is not inc:
            return  # given up on at its deadline, and handled then
        actor._incarnation = None
        self._cancel_timer(inc.timer)
        inc.timer = None
        if failure is not None:
            actor._last_crash = failure
        if actor._starter is not None:  # ended before task_status.started(): Nursery.start's
            self._finish(actor, failure or self._unstarted(actor, inc))
            return
        if actor._stop_requested or self.stopping:
            self._finish(actor)
            return
        if actor._group is not None:  # a member of a group restart: down, as it should be
            return
        restart = actor._restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and failure is None):
            self._finish(actor)
            return
        self._restart_for(actor, failure)

    def _unstarted(self, actor: ActorHandle, inc: Incarnation | None) -> RuntimeError:
        """What `Supervisor.start()` raises for a child that ended before `started()`."""
        if inc is not None and inc.deadline is None:
            return RuntimeError(f"{actor._path} returned without calling task_status.started()")
        group = actor._group
        gave_up = self.sup._gave_up
        if gave_up is not None:
            why = "because its supervisor gave up"
        elif group is not None and group.trigger is not actor:
            why = f"for a group restart after {group.trigger._path} {group.reason}"
        elif actor._stop_requested and not self.stopping:
            why = "by ActorHandle.cancel()"
        else:
            why = "because its supervisor is stopping"
        error = RuntimeError(
            f"{actor._path} was stopped {why}, before it called task_status.started()"
        )
        error.__cause__ = gave_up
        return error

    def _on_stop(self, actor: ActorHandle) -> None:
        if actor._state is ActorState.STOPPED:
            return
        inc = actor._incarnation
        if inc is None:  # down (waiting for its group or its back-off): stop it now
            self._finish(actor)
        elif inc.deadline is None:
            self._deadline_for(actor, inc)

    def _on_deadline(self, actor: ActorHandle, inc: Incarnation) -> None:
        if actor._incarnation is not inc:
            return  # it ended in time
        if inc.kill is not None:  # a process: killed for real, it ends as any process ends
            logger(actor=actor._path).warning(
                "actor_shutdown_timeout",
                incarnation=inc.number,
                shutdown=actor._shutdown,
                pid=actor._pid,
                hint="its process did not end within its shutdown deadline: killed (SIGKILL)",
            )
            inc.kill()
            return
        waited = actor._shutdown
        if waited:
            logger(actor=actor._path).warning(
                "actor_shutdown_timeout",
                incarnation=inc.number,
                shutdown=waited,
                stuck_at=_where(inc.task),
                hint=(
                    "it did not end within its shutdown deadline after it was cancelled (a"
                    " shielded section, or code that never reaches a checkpoint); its ports"
                    " are closed and the supervisor goes on, but trio cannot kill a task: the"
                    " supervisor's block exits only when it ends"
                ),
            )
        inc.killed = True
        inc.halted = True
        inc.cancel_handlers()
        inc.free_ports()
        inc.mark("began")  # whoever waits for it to begin or be ready waits no more
        inc.mark("ready")
        actor._reclaim()  # the slot's ports move on; the stuck task keeps dead objects
        inc.close_ports()
        inc.mark("finished")
        self._on_exit(actor, inc, None)

    # -- stopping children -----------------------------------------------------------------

    def _deadline_for(self, actor: ActorHandle, inc: Incarnation) -> None:
        """Cancel `inc` (if not yet) and give it until its shutdown deadline to end."""
        inc.stop()
        shutdown = actor._shutdown
        if shutdown is None:
            inc.deadline = math.inf
            return
        inc.deadline = trio.current_time() + shutdown
        inc.timer = self._at(inc.deadline, _DEADLINE, (actor, inc))

    @staticmethod
    def _to_stop(actors: Any) -> list[ActorHandle]:
        """The running ones of `actors` (in spawn order), in the order to stop them, the next
        one last: the last spawned first, but any already being stopped before all others."""
        running = [a for a in actors if a._incarnation is not None]
        running.sort(key=lambda a: (a._incarnation.deadline is not None, a._index))
        return running

    def _stop_next(self, order: list[ActorHandle]) -> bool:
        """Stop `order`'s children from its end, one at a time: cancel the last one still
        running unless it is already stopping. Returns `True` while one still runs."""
        while order:
            actor = order[-1]
            inc = actor._incarnation
            if inc is None:  # ended, in time or given up on
                order.pop()
                continue
            if inc.deadline is None:
                self._deadline_for(actor, inc)
            return True
        return False

    def _advance(self) -> None:
        """Take the shutdown, or every group restart, as far as it can go now."""
        if self.stopping:
            if self.order is None:  # the shutdown begins
                for group in self.groups:
                    self._cancel_timer(group.timer)
                self.groups.clear()
                self.unready.clear()
                for actor in list(self.sup._children):
                    if actor._incarnation is None:
                        self._finish(actor)  # down, waiting to restart: stopped for good now
                    else:
                        actor._state = ActorState.STOPPING
                self.order = self._to_stop(self.sup._children)
            self._stop_next(self.order)
            return
        for group in list(self.unready):  # the others wait for their back-off
            if group.order is None:
                group.order = self._to_stop(group.members)
            if self._stop_next(group.order):
                continue
            del self.unready[group]
            group.due = trio.current_time() + group.delay
            if group.delay > 0:
                group.timer = self._at(group.due, _DUE, group)
            else:
                self._launch_group(group)

    def _finish(self, actor: ActorHandle, error: BaseException | None = None) -> None:
        """`actor` stopped for good: close its ports, forget it, wake whoever waits."""
        if error is None and actor._starter is not None:
            error = self._unstarted(actor, None)
        self.sup._finish(actor, error)
        group = actor._group
        if group is not None:
            actor._group = None
            group.members.discard(actor)
            if not group.members:
                self._drop(group)

    def _drop(self, group: Group) -> None:
        """`group` restarts nobody any more (merged into another, or left empty)."""
        self.groups.pop(group, None)
        self.unready.pop(group, None)
        self._cancel_timer(group.timer)
        group.timer = None

    # -- restarts --------------------------------------------------------------------------

    def _restart_for(self, actor: ActorHandle, failure: Exception | None) -> None:
        sup = self.sup
        now = trio.current_time()
        times = sup._restart_times
        times.append(now)
        while times and times[0] < now - sup._within:  # T >= Now - Period counts, as OTP's
            times.popleft()
        if len(times) > sup._max_restarts:
            self._give_up(actor, failure)
            return
        sup._restarts += 1
        recent = actor._restart_times
        if recent is None:
            recent = actor._restart_times = deque()
        while recent and recent[0] < now - sup._within:
            recent.popleft()
        delay = 0.0 if sup._backoff is None else sup._backoff.delay(len(recent))
        recent.append(now)
        group = Group(delay, actor, failure is not None)
        strategy = sup._strategy
        if strategy is RestartStrategy.ONE_FOR_ALL:
            others = [c for c in sup._children if c is not actor]
        elif strategy is RestartStrategy.REST_FOR_ONE:
            others = [c for c in sup._children if c._index > actor._index]
        else:
            others = []
        self._join(group, actor)
        for other in others:
            if other._stop_requested:
                continue
            self._join(group, other)
            if other._restart is Restart.TEMPORARY:
                other._stop_requested = True  # OTP: stopped with the group, never restarted
                other._state = ActorState.STOPPING
        self.groups[group] = None
        self.unready[group] = None

    def _join(self, group: Group, actor: ActorHandle) -> None:
        old = actor._group
        if old is not None and old is not group:  # already pending: the two restarts merge
            for member in old.members:
                member._group = group
            group.members |= old.members
            group.delay = max(group.delay, old.delay)
            self._drop(old)
        group.order = None  # to be made again, with every member
        actor._group = group
        group.members.add(actor)
        actor._state = ActorState.RESTARTING

    def _launch_group(self, group: Group) -> None:
        self._drop(group)
        sup = self.sup
        previous: Incarnation | None = None
        launched = []
        for actor in sorted(group.members, key=lambda a: a._index):
            actor._group = None
            if actor not in sup._children or actor._stop_requested:
                continue
            actor._restarts += 1
            inc = sup._incarnate(actor)
            sup._launch(actor, inc, None, previous, "ready")
            previous = inc
            launched.append(actor)
        trigger = group.trigger
        for actor in launched:  # logged after: a log sink that raises changes no decision
            logger(actor=actor._path).info(
                "actor_restarted",
                reason=group.reason if actor is trigger else f"{trigger._path} restarted",
                incarnation=actor._number,
                intensity_left=sup._max_restarts - len(sup._restart_times),
            )

    def _give_up(self, actor: ActorHandle, failure: Exception | None) -> None:
        sup = self.sup
        times = len(sup._restart_times) - 1
        why = f"the last for {actor._path}"
        if failure is None:  # the classic trap: a worker loop that ends, PERMANENT by default
            why += (
                ", which returned: a PERMANENT child is restarted even after a normal return;"
                " spawn children that may finish with restart=Restart.TRANSIENT"
            )
        n = sup._max_restarts
        error = TooManyRestartsError(
            f"supervisor {sup._path} gave up: more than {n} "
            f"restart{'' if n == 1 else 's'} within {sup._within:g}s ({why})",
            path=sup._path,
            max_restarts=n,
            within=sup._within,
        )
        error.__cause__ = failure
        sup._gave_up = error
        self._finish(actor)
        crash = {} if failure is None else {"crash": summary(failure)}
        logger(actor=sup._path).error(  # its traceback was logged once, as actor_crashed
            "supervisor_gave_up", restarts=times, within=sup._within, child=actor._path, **crash
        )
        sup.cancel()


def _where(task: trio.lowlevel.Task | None) -> str:
    """Where `task` waits: its innermost frame outside trio and actors, `file:line in name`."""
    if task is None:
        return "not started"
    try:
        frames = list(task.iter_await_frames())
    except Exception:
        return "unknown"
    if not frames:
        return "not waiting (it never reaches a checkpoint)"
    ours = [frame for frame in frames if not frame[0].f_code.co_filename.startswith(_LIBRARIES)]
    frame, lineno = (ours or frames)[-1]
    code = frame.f_code
    return f"{code.co_filename}:{lineno} in {code.co_name}"


_LIBRARIES: Final = tuple(
    str(pathlib.Path(str(module.__file__)).parent) + os.sep
    for module in (trio, sys.modules[__package__])
)
