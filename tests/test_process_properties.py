"""Property tests of ports whose ends are spread over several processes.

The hypothesis programs of `test_properties.py` (posts, transfers, starts, closes, drains,
handlers set and unset, posts on stale port objects, refused posts) run again with the ends
of three channels spread over the parent and three process actors, and moved between them at
random: to another process, back to where they came from, to the same process, one end or
both at once. Every process executes its part of a program as it comes (the parent its own
part inline, each worker in order what it is told on its control port), so posts, moves and
closes in different processes overlap for real. Then each end receives what is left, and
every direction must have delivered exactly what was posted, once, in order; a port that was
closed got a prefix (D2); a peer's close came after every message its end had posted; a post
that was refused detached nothing (D3); nothing posted on a stale port arrived anywhere; and
every node is back to the routes it started with (no forward, no end left behind).

The worker processes start once per test and serve every example of it (the examples are
independent: each starts from nothing and closes all it made). They run in a trio run on a
thread of their own, which the test's examples call into. After each test no child process
is left.

`ACTORS_PROCESS_EXAMPLES=2000` runs a long search of the random programs (the default keeps
the file at a few seconds); the other property tests here scale with it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing
from _process_hosts import Holder, host, peer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actors
from actors import MessageChannel, MessagePort, Restart

EXAMPLES = int(os.environ.get("ACTORS_PROCESS_EXAMPLES", "60"))
WORKERS = 3
HOLDERS = 1 + WORKERS  # holder 0 is the parent
CHANNELS = 3
ENDS = 2 * CHANNELS
ANSWER = float(os.environ.get("ACTORS_PROCESS_ANSWER", "60"))  # seconds to wait for an answer
SETTLE_ROUNDS = 12  # rounds of syncs with every worker before the routes must be clean

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="Linux child processes")


# -- the world: the parent's holder, and the workers ------------------------------------


class World:
    """The parent's holder and the control ports of the workers (holders 1, 2, 3)."""

    def __init__(self, parent: Holder, controls: list[MessagePort]) -> None:
        self.parent = parent
        self.controls = controls
        self.baseline: list[int] = []  # each node's ends once the world is set up

    async def do(
        self, h: int, command: tuple[Any, ...], ports: tuple[MessagePort, ...] = ()
    ) -> Any:
        """Have holder `h` do `command`: the parent at once, a worker when it comes to it."""
        if h == 0:
            return await self.parent.execute(command, ports)
        self.controls[h - 1].post_message(command, ports)
        return None

    async def ask_all(self, command: tuple[Any, ...]) -> list[Any]:
        """Every holder's answer to `command` (once it has done everything before it)."""
        for control in self.controls:
            control.post_message(command)
        answers = []
        with trio.fail_after(ANSWER):
            for control in self.controls:
                answers.append((await control.receive()).data)
        return [await self.parent.execute(command, ()), *answers]

    async def ask(self, h: int, command: tuple[Any, ...]) -> Any:
        if h == 0:
            return await self.parent.execute(command, ())
        control = self.controls[h - 1]
        control.post_message(command)
        with trio.fail_after(ANSWER):
            return (await control.receive()).data

    async def settle(self) -> None:
        """Sync with every worker until no node keeps a forward or an end it did not have
        when the world was set up: each round lets the frames sent before it arrive."""
        for _ in range(SETTLE_ROUNDS):
            answers = await self.ask_all(("sync",))
            state = [
                (a[1], a[2] - base, a[3]) for a, base in zip(answers, self.baseline, strict=True)
            ]
            if all(s == (0, 0, 0) for s in state):
                return
        detail = {a[4]: a[5] for a in answers}
        raise AssertionError(
            f"routes left behind (forwards, extra ends, streams) by holder: {state}; {detail}"
        )

    async def reset(self) -> None:
        """Start an example from nothing (after a failed one, something may be left)."""
        await self.ask_all(("reset",))


class Runner:
    """A trio run on a thread of its own, with the workers started once: tests call into it."""

    def __init__(self) -> None:
        self.world: World | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.stop: trio.Event | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._thread, name="process world", daemon=True)

    def _thread(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()

    async def _main(self) -> None:
        self.stop = trio.Event()
        channels = [MessageChannel() for _ in range(WORKERS)]
        async with actors.open_supervisor(name="hosts") as sup, trio.open_nursery() as nursery:
            for i, channel in enumerate(channels):
                sup.spawn(host, channel.port2, i + 1, process=True, restart=Restart.TEMPORARY)
            world = World(Holder(0, nursery), [channel.port1 for channel in channels])
            for i in range(HOLDERS):  # a carrier from every holder to every holder
                for j in range(HOLDERS):
                    carrier = MessageChannel()
                    await world.do(i, ("carrier_out", j), (carrier.port1,))
                    await world.do(j, ("carrier_in", i), (carrier.port2,))
            for _ in range(SETTLE_ROUNDS):  # until the carriers' moves are over
                answers = await world.ask_all(("sync",))
                if not any(answer[1] for answer in answers):
                    break
            world.baseline = [answer[2] for answer in answers]
            self.world, self.token = world, trio.lowlevel.current_trio_token()
            self.ready.set()
            await self.stop.wait()
            for control in world.controls:
                control.close()  # each worker's loop ends, and so does its process
            nursery.cancel_scope.cancel()
        world.parent.close_all()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(60)
        if self.error is not None:
            raise self.error
        assert self.world is not None, "the workers did not start in time"

    def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run `fn(world, *args)` in the world's trio run; return what it returns."""
        return trio.from_thread.run(fn, self.world, *args, trio_token=self.token)

    def close(self) -> None:
        if self.token is not None and self.stop is not None:
            trio.from_thread.run_sync(self.stop.set, trio_token=self.token)
        self.thread.join(60)
        assert not self.thread.is_alive(), "the world's trio run did not end"
        if self.error is not None:
            raise self.error


def child_processes() -> list[int]:
    """The pids of this process's children (zombies included)."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            found.append(int(entry))
    return found


@pytest.fixture
def world() -> Iterator[Runner]:
    """The workers, started once for the test; afterwards, no child process is left."""
    assert not child_processes(), "child processes before the test"
    runner = Runner()
    try:
        runner.start()
        yield runner
    finally:
        runner.close()
    assert not child_processes(), "a child process outlived the test"


HANG_SECONDS = 60 + EXAMPLES // 4  # conftest's alarm, scaled: a long search takes minutes


# -- the random programs ----------------------------------------------------------------

Op = tuple[str, int, int, int]  # (operation, end, holder, argument)
OPERATIONS = (
    ["post"] * 4
    + ["move"] * 3
    + [
        *("move_both", "close", "start", "listen", "unlisten", "drain", "stale_post"),
        *("bad_post", "sync"),
    ]
)
ops = st.tuples(
    st.sampled_from(OPERATIONS),
    st.integers(0, ENDS - 1),
    st.integers(0, HOLDERS - 1),
    st.integers(0, 3),
)


class Model:
    """Where each end is, what was posted on it, and what a program did to it."""

    def __init__(self, placement: list[int]) -> None:
        self.at: dict[int, int | None] = {}  # end -> its holder; None once closed
        for c, h in enumerate(placement):
            self.at[2 * c] = self.at[2 * c + 1] = h
        self.wired = [False] * CHANNELS  # an end of it went through a node once
        self.closed_early: set[int] = set()  # closed by the program (D2 applies)
        self.posted: dict[int, list[int]] = {k: [] for k in range(ENDS)}  # by sender
        self.ends_expected: set[int] = set()  # ends that must have got EndOfChannel
        self.seq = 0

    def next_seqs(self, n: int) -> list[int]:
        seqs = list(range(self.seq + 1, self.seq + 1 + n))
        self.seq += n
        return seqs


async def play(world: World, placement: list[int], program: list[Op]) -> None:
    await world.reset()
    model = Model(placement)
    for c, h in enumerate(placement):
        await world.do(h, ("make", c))
    for op, k, j, n in program:
        await step(world, model, op, k, j, n)
    await world.ask_all(("sync",))  # every holder is done with the program (a drain there
    await finish(world, model)  # must not take the last messages finish() waits for)
    reports = await world.ask_all(("report",))
    check(model, reports)
    await world.settle()


async def step(world: World, model: Model, op: str, k: int, j: int, n: int) -> None:
    h = model.at[k]
    if h is None:
        return
    c = k // 2
    if op == "post":
        seqs = model.next_seqs(1 + n)
        await world.do(h, ("post", k, seqs))
        model.posted[k] += seqs
    elif op == "move":
        await world.do(h, ("transfer", [k], j))
        model.at[k] = j
        model.wired[c] = model.wired[c] or j != 0 or h != 0
    elif op == "move_both":
        if model.at[peer(k)] == h:  # both ends in one message
            await world.do(h, ("transfer", [k, peer(k)], j))
            model.at[k] = model.at[peer(k)] = j
            model.wired[c] = model.wired[c] or j != 0 or h != 0
    elif op == "close":
        await world.do(h, ("close", k))
        model.at[k] = None
        model.closed_early.add(k)
    elif op in ("start", "unlisten", "drain", "stale_post"):
        await world.do(h, (op, k))
    elif op == "listen":
        await world.do(h, ("listen", k, "onmessage" if n % 2 else "listener"))
    elif op == "bad_post":
        others = [m for m, at in model.at.items() if at == h and m not in (k, peer(k))]
        wire = n % 2 == 1
        # the wire refuses only while the peer is there: once it is gone, a post does
        # nothing but detach (D6), and its close may or may not have come yet; so the post
        # is done before the program goes on (a later close of the peer comes after it)
        if others and (not wire or (model.wired[c] and model.at[peer(k)] is not None)):
            await world.ask(h, ("bad_post", k, others[n % len(others)], wire))
    elif op == "sync":
        await world.ask(j, ("sync",))


async def finish(world: World, model: Model) -> None:
    """Each channel still whole: one end gets everything up to a last message and closes,
    then the other gets everything and its close. An end whose peer closed gets its close."""
    for c in range(CHANNELS):
        a, b = 2 * c, 2 * c + 1
        if model.at[a] is not None and model.at[b] is not None:
            (last,) = model.next_seqs(1)
            model.posted[a].append(last)
            await world.do(model.at[a], ("post", a, [last]))
            await world.do(model.at[b], ("finish", b, last))
            await world.do(model.at[b], ("close", b))
            model.at[b] = None
        for k in (a, b):
            h = model.at[k]
            if h is not None:
                await world.do(h, ("finish", k, None))
                await world.do(h, ("close", k))
                model.at[k] = None
                model.ends_expected.add(k)


def check(model: Model, reports: list[Any]) -> None:
    errors = [e for report in reports for e in report[2]]
    assert not errors, f"the holders found: {errors}"
    left = {h: report[3] for h, report in enumerate(reports) if report[3]}
    assert not left, f"ends still held after the example: {left}"
    records: dict[int, list[tuple[Any, ...]]] = {k: [] for k in range(ENDS)}
    for report in reports:
        for record in report[1]:
            records[record[0]].append(record)
    for r in range(ENDS):
        s = peer(r)
        got = [record[2:] for record in sorted(records[r], key=lambda record: record[1])]
        strays = [g for g in got if g[0] == "stray"]
        assert not strays, f"end {r} got what nobody posted to it: {strays}"
        seqs = [g[0] for g in got if g[0] != "end"]
        ends = [i for i, g in enumerate(got) if g[0] == "end"]
        posted = model.posted[s]
        assert len(ends) <= 1, f"end {r} got EndOfChannel {len(ends)} times"
        if ends:
            assert ends[0] == len(got) - 1, f"end {r}: something came after its close: {got}"
            assert seqs == posted, f"end {r}: the close came before {posted} (got {seqs})"
        if r in model.closed_early:
            assert seqs == posted[: len(seqs)], f"end {r}: not a prefix of {posted}: {seqs}"
        else:
            assert seqs == posted, f"direction {s} -> {r}: posted {posted}, got {seqs}"
            assert bool(ends) == (r in model.ends_expected), f"end {r}: {got}"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    placement=st.lists(st.integers(0, HOLDERS - 1), min_size=CHANNELS, max_size=CHANNELS),
    program=st.lists(ops, max_size=40),
)
def test_programs_over_processes_keep_every_direction(
    world: Runner, placement: list[int], program: list[Op]
) -> None:
    """Posts, moves between processes (and back, and in place), starts, handlers, drains,
    closes and refused posts: each direction delivers what was posted, once, in order, and a
    close after it; a refused post detaches nothing; no route is left behind."""
    world.run(play, placement, program)
