"""A fuzzer of random supervision programs: strategies x restart types x crashes, returns and
cancels x body errors and cancels from outside x back-off x shutdown deadlines x ``start()``
from outside the block.

Each program runs on an autojump clock and is then checked against the rules that hold
whatever the interleaving:

- the block ends with one of the outcomes the program allows (nothing else: never a
  ``RuntimeError`` from inside the supervisor);
- it ends promptly once the supervisor is stopping: within the cleanups its children take,
  never waiting for a back-off that will not happen;
- every ``start()`` awaited from outside the block has returned or raised;
- no incarnation of a child begins while its previous one is still running, unless the
  previous one was given up on at its deadline;
- while the supervisor stops, responsive children wind down one at a time, last spawned
  first;
- afterwards every child is stopped for good and every port it was spawned with is closed.

``ACTORS_FUZZ_EXAMPLES`` sets the number of programs (the suite runs a few hundred).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from typing import Any

import structlog.testing
import trio
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import actors
from actors import (
    ActorHandle,
    ActorState,
    Backoff,
    MessageChannel,
    Restart,
    RestartStrategy,
    TooManyRestartsError,
    open_supervisor,
)

EXAMPLES = int(os.environ.get("ACTORS_FUZZ_EXAMPLES", "300"))
STUCK = 30.0  # a cleanup this long ignores the cancellation: it outlasts every deadline


class Boom(Exception):
    """A child's scripted crash."""


class BodyError(Exception):
    """The block's own code raised."""


@dataclass(frozen=True)
class ChildSpec:
    restart: Restart
    cleanup: float  # seconds its cleanup takes, shielded (STUCK: it ignores the cancel)
    shutdown: float | None
    started: bool  # started with start() from a task outside the block
    ready_after: float | None  # start(): when it calls started() (None: never)


@dataclass(frozen=True)
class Program:
    strategy: RestartStrategy
    max_restarts: int
    within: float
    backoff: Backoff | None
    children: tuple[ChildSpec, ...]
    steps: tuple[tuple[float, str, int], ...]  # (pause before, action, child index)
    ending: str  # how the program ends: "cancel", "scope", "error", "return"


child_specs = st.builds(
    ChildSpec,
    restart=st.sampled_from(list(Restart)),
    cleanup=st.sampled_from([0.0, 0.0, 0.2, 1.0, STUCK]),
    shutdown=st.sampled_from([5.0, 5.0, 0.5, 0.0, None]),
    started=st.booleans(),
    ready_after=st.sampled_from([0.0, 0.3, None]),
)
programs = st.builds(
    Program,
    strategy=st.sampled_from(list(RestartStrategy)),
    max_restarts=st.integers(0, 4),
    within=st.sampled_from([1.0, 2.0, 5.0]),
    backoff=st.sampled_from(
        [
            None,
            None,
            Backoff(initial=0.1),
            Backoff(initial=1.0, cap=2.0),
            Backoff(initial=600.0, cap=600.0),
        ]
    ),
    children=st.lists(child_specs, min_size=1, max_size=5).map(tuple),
    steps=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0]),
            st.sampled_from(["crash"] * 4 + ["return", "cancel_child", "spawn", "settle"]),
            st.integers(0, 7),
        ),
        min_size=2,
        max_size=12,
    ).map(tuple),
    ending=st.sampled_from(["cancel", "scope", "error", "return"]),
)


@dataclass
class Run:
    """What a program did, for the checks."""

    program: Program
    handles: dict[str, ActorHandle] = field(default_factory=dict)
    specs: list[ChildSpec] = field(default_factory=list)
    inbox_peers: list[actors.MessagePort] = field(default_factory=list)
    orders: dict[str, str] = field(default_factory=dict)
    wakeups: dict[str, trio.Event] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)  # incarnation running now, per child
    overlaps: list[tuple[str, int]] = field(default_factory=list)  # began while this one ran
    killed: set[tuple[str, int]] = field(default_factory=set)  # given up on at a deadline
    log: list[tuple[float, str, str, int]] = field(default_factory=list)  # (t, what, child, inc)
    spawned: list[str] = field(default_factory=list)  # in the order spawn()/start() were called
    starters: dict[str, str] = field(default_factory=dict)  # child -> "waiting", "ok", "raised"
    stop_time: float | None = None
    busy_at_stop: set[str] = field(default_factory=set)  # already stopping or down then
    errors: list[str] = field(default_factory=list)


def make_child(run: Run) -> Any:
    async def child(cleanup: float, port: actors.MessagePort, task_status: Any = None) -> None:
        me = actors.current_actor()
        name, inc = me.name, me.incarnation
        run.handles[name] = me
        previous = run.running.get(name)
        if previous is not None:
            run.overlaps.append((name, previous))
        run.running[name] = inc
        run.log.append((trio.current_time(), "begin", name, inc))
        try:
            if task_status is not None:
                spec = run.specs[int(name[1:])]
                if spec.ready_after is None:
                    await trio.sleep_forever()
                await trio.sleep(spec.ready_after)
                task_status.started()
            while True:
                run.wakeups[name] = wakeup = trio.Event()
                await wakeup.wait()
                order = run.orders.pop(name, "")
                if order == "crash":
                    raise Boom(name)
                if order == "return":
                    return
        except trio.Cancelled:  # stopped by its supervisor (its own exits are not stops)
            run.log.append((trio.current_time(), "stopping", name, inc))
            raise
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(cleanup)
            run.log.append((trio.current_time(), "ended", name, inc))
            if run.running.get(name) == inc:
                del run.running[name]

    return child


async def play(run: Run) -> str:
    program = run.program
    child = make_child(run)

    def spawn_one(sup: actors.Supervisor, spec: ChildSpec, nursery: trio.Nursery) -> None:
        index = len(run.specs)
        name = f"c{index}"
        run.specs.append(spec)
        channel = MessageChannel()
        run.inbox_peers.append(channel.port1)
        kwargs: dict[str, Any] = {"name": name, "restart": spec.restart, "shutdown": spec.shutdown}
        if not spec.started:
            run.spawned.append(name)
            run.handles[name] = sup.spawn(child, spec.cleanup, channel.port2, **kwargs)
            return
        run.starters[name] = "waiting"

        async def starter() -> None:
            try:
                run.spawned.append(name)
                await sup.start(child, spec.cleanup, channel.port2, **kwargs)
                run.starters[name] = "ok"
            except (RuntimeError, Boom):
                run.starters[name] = "raised"

        nursery.start_soon(starter)  # the child records its handle when it begins

    async def body(nursery: trio.Nursery) -> None:
        async with open_supervisor(
            strategy=program.strategy,
            max_restarts=program.max_restarts,
            within=program.within,
            backoff=program.backoff,
        ) as sup:
            for spec in program.children:
                spawn_one(sup, spec, nursery)
            await trio.testing.wait_all_tasks_blocked()
            for pause, action, target in program.steps:
                await trio.sleep(pause)
                if action == "spawn":
                    if len(run.specs) < 8:
                        spawn_one(sup, program.children[target % len(program.children)], nursery)
                    continue
                if action == "settle":
                    await trio.testing.wait_all_tasks_blocked()
                    continue
                handle = find(sup, f"c{target % len(run.specs)}")
                if handle is None:
                    continue
                if action == "cancel_child":
                    handle.cancel()
                    run.busy_at_stop.add(handle.name)
                else:
                    run.orders[handle.name] = action
                    wakeup = run.wakeups.get(handle.name)
                    if wakeup is not None:
                        wakeup.set()
            await trio.testing.wait_all_tasks_blocked()  # every start() from outside was made
            run.stop_time = trio.current_time()
            run.busy_at_stop |= {
                h.name for h in sup.children if h.statistics().state is not ActorState.RUNNING
            }
            if program.ending == "cancel":
                sup.cancel()
            elif program.ending == "error":
                raise BodyError
            elif program.ending == "scope":
                try:
                    await trio.sleep_forever()  # the scope around us ends it
                finally:
                    run.stop_time = trio.current_time()
                    run.busy_at_stop |= {
                        h.name
                        for h in sup.children
                        if h.statistics().state is not ActorState.RUNNING
                    }
            else:  # "return": the block waits for children that stop on their own
                for handle in list(sup.children):
                    handle.cancel()

    outcome = "normal"
    async with trio.open_nursery() as nursery:
        try:
            limit = sum(p for p, _, _ in program.steps) + 1
            if program.ending != "scope":
                limit = math.inf  # the block must end by itself
            with trio.move_on_after(limit) as scope:
                await body(nursery)
            if scope.cancelled_caught:
                outcome = "scope"
        except TooManyRestartsError:
            outcome = "gave up"
        except BaseExceptionGroup as group:
            rest = group.subgroup(BodyError)
            if rest is None or rest.split(BodyError)[1] is not None:
                raise
            outcome = "error"
        finally:
            if run.stop_time is None:
                run.stop_time = trio.current_time()
            run.log.append((trio.current_time(), "block ended", "", 0))
    return outcome


def find(sup: actors.Supervisor, name: str) -> ActorHandle | None:
    for handle in sup.children:
        if handle.name == name:
            return handle
    return None


def check(run: Run, outcome: str) -> None:
    program = run.program
    assert not run.errors, run.errors
    # a new incarnation begins only once the last one ended, or was given up on
    for name, inc in run.overlaps:
        assert (name, inc) in run.killed, f"{name}: a new incarnation began while {inc} ran"
    allowed = {"normal", "gave up", "scope", "error"}
    assert outcome in allowed
    if outcome == "error":
        assert program.ending == "error"
    # every start() awaited from outside the block returned or raised
    assert "waiting" not in run.starters.values(), run.starters
    # the block ended promptly once stopping: the cleanups at most, never a back-off
    [(ended, *_)] = [e for e in run.log if e[1] == "block ended"]
    assert run.stop_time is not None
    slack = sum(spec.cleanup for spec in run.specs) + STUCK + 1.0
    waited = ended - run.stop_time
    assert waited <= slack, f"the block ended {waited} s after stopping began (allowed {slack})"
    # afterwards every child is stopped for good and its slot ports are closed
    for handle in run.handles.values():
        assert handle.statistics().state is ActorState.STOPPED, handle
    for peer in run.inbox_peers:
        assert not peer.statistics().entangled
    # children that wind down promptly do so one at a time, last spawned first, once the
    # supervisor is stopping for good (and nothing else is stopping them)
    stop = run.stop_time
    prompt = {
        f"c{i}"
        for i, spec in enumerate(run.specs)
        if spec.cleanup < STUCK and (spec.shutdown is None or spec.cleanup < spec.shutdown)
    } - run.busy_at_stop
    spawned = run.spawned  # a child spawned while a group restart winds down may never
    # run its first incarnation: spawn order is the order of the calls
    windows = []
    for t, what, name, inc in run.log:
        if what == "stopping" and t >= stop and name in prompt:
            ends = [e[0] for e in run.log if e[1] == "ended" and e[2] == name and e[3] == inc]
            windows.append((t, ends[0], spawned.index(name)))
    if program.ending in ("scope", "error", "cancel"):
        for (s1, e1, i1), (s2, _, i2) in itertools.pairwise(windows):
            if s2 > s1 and s2 >= e1:
                assert i2 < i1, f"{spawned[i2]} stopped after {spawned[i1]}: not in reverse"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(programs)
def test_random_supervision_programs_keep_the_rules(program: Program) -> None:
    """A random supervision program ends as allowed, promptly, with nothing left running,
    no ``start()`` hung, no incarnation overlapping its predecessor, in shutdown order."""
    run = Run(program)
    result: list[str] = []

    async def main() -> None:
        with trio.fail_after(10_000):  # on the autojump clock: a hang fails, it does not hang
            result.append(await play(run))

    with structlog.testing.capture_logs() as logs:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    run.killed = (
        {  # given up on at a deadline, or not waited for at all (shutdown=0)
            (e["actor"].rpartition("/")[2], e["incarnation"])
            for e in logs
            if e["event"] == "actor_shutdown_timeout"
        }
        | {
            (name, inc)
            for _, what, name, inc in run.log
            if what == "begin" and run.specs[int(name[1:])].shutdown == 0
        }
    )
    check(run, result[0])
    event(f"outcome: {result[0]}")
    if run.killed:
        event("a child was given up on at its deadline")
    if any(what == "begin" and inc > 1 for _, what, _, inc in run.log):
        event("a child was restarted")
    if run.starters:
        event(f"start() from outside: {sorted(set(run.starters.values()))}")


def test_the_fuzzer_sees_a_stuck_child_as_a_long_cleanup() -> None:
    """A sanity check of the fuzzer: a stuck child outlasts every deadline it can be given."""
    assert max(5.0, 0.5) < STUCK
