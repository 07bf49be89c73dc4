"""Benchmarks: PortCollection broadcasts against a loop over raw trio memory channels, in one run.

    .venv/bin/python bench/bench_broadcast.py             # full run (7 repeats per figure)
    .venv/bin/python bench/bench_broadcast.py --quick     # smoke run (3 short repeats)
    .venv/bin/python bench/bench_broadcast.py --profile   # where our time goes (no figures)
    python3 dev.py bench                                  # bench_ports.py, bench_actors.py, this

Same method as ``bench_ports.py``: every figure is measured against its baseline in the same
process, with repeats interleaved (ours, baseline, baseline, ours, ...); each figure is the
median of its repeats and each ratio is the ratio of the medians. Every repeat is one
``trio.run`` with fresh members, and the clock is read inside it around each broadcast only.
The garbage collector stays on but runs a full collection before every repeat.

A repeat makes ``MEMBERS`` members and broadcasts ``B`` messages to them (``B`` = 200, quick
50). Ours: a ``MessageChannel`` per member, ``port1`` in the ``PortCollection``
(``max_queued=B``), ``port2`` the receiver. Raw: an ``open_memory_channel(B)`` per member, the
same per-member buffer, so ``send_nowait`` never fails. After each broadcast, outside the timed
region, every receiver takes its message with ``await receive()`` (ours and raw alike), so
each broadcast finds the queues empty, as when members keep up. Each figure is the time of one
broadcast to all members.

Figures:

1. ``coll.post_message(7)`` (policy ``WAIT``: no bound check) against the raw loop
   ``for s in sends: s.send_nowait(7)``. Target: within ``TARGET`` (1.3x) of the raw loop.
   For reference (1n), the same without draining: the queues grow to ``B`` messages.
2. For reference: ``await coll.send(7)`` under ``WAIT`` (the bound is checked for every member
   before delivering; ``max_queued`` is never reached), ``await coll.send(7)`` and
   ``coll.post_message(7)`` under ``DROP_OLDEST`` (the bound checked as each member is
   delivered to; nothing is dropped).
3. For reference: no collection, ``for port in ports: port.post_message(7)`` over the 1,000
   ``port1`` (what one writes without a collection).
4. For reference: a small mutable message, ``{"op": "tick", "n": 1}``: every member gets its
   own clone. Against the raw loop sending that same dict to all (shared, no isolation), and
   against the raw loop sending each member ``copy.deepcopy`` of it.
5. Memory per member, under ``tracemalloc`` in a separate pass (it slows everything down):
   the traced bytes after minus before making ``MEMBERS`` members, with every end kept alive
   and a full collection before each reading, divided by ``MEMBERS``. Ours: a
   ``MessageChannel`` with ``port1`` added to a collection, both ports kept. Raw: an
   ``open_memory_channel(B)`` pair, both ends kept. For reference: a ``MessageChannel``
   without the collection (5c), and the bytes per queued message (5q: ``B`` broadcasts of an
   int, nobody receiving).

``--profile`` prints, instead of the figures: a breakdown of figure 1 per member (the raw
``send_nowait``, the collection's membership snapshot alone as ``len(coll)``, a lone
``port.post_message``, ``post_message`` to the collection), and cProfile of the figure-1
broadcasts, with the share of each function of ``actors/``.
"""

from __future__ import annotations

import copy
import cProfile
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio
from _harness import (  # this script's folder
    Row,
    Series,
    interleave,
    noise,
    report_profile,
    run_main,
    traced_now,
)

import actors

perf_counter = time.perf_counter

MEMBERS = 1000
TARGET = 1.3
"""post_message to the collection: within 1.3x the raw send_nowait loop (issue 4)."""
ATOM = 7
"""The small immutable message: shared by all members, never copied."""


def small_dict() -> dict[str, object]:
    """The small mutable message of figure 4 (a fresh one per run)."""
    return {"op": "tick", "n": 1}


@dataclass(frozen=True)
class Config:
    repeats: int
    members: int
    broadcasts: int


FULL = Config(repeats=7, members=MEMBERS, broadcasts=200)
QUICK = Config(repeats=3, members=MEMBERS, broadcasts=50)


# -- the sides: setup, one broadcast, drain ----------------------------------------------


@dataclass
class Side:
    """One side of a figure, set up inside a run: ``broadcast()`` is what the clock times."""

    broadcast: Callable[[], Awaitable[None]]
    drain: Callable[[], Awaitable[None]]
    close: Callable[[], None]
    check: Callable[[], None] = lambda: None
    """Run once after the last broadcast, untimed: did every member get every message?"""


Make = Callable[[int, int], Side]
"""``make(members, buffer)``: a side with fresh members."""


def _ports(n: int) -> tuple[list[actors.MessagePort], list[actors.MessagePort]]:
    """``n`` fresh channels: the senders (``port1``) and the receivers (``port2``)."""
    senders, receivers = [], []
    for _ in range(n):
        ch = actors.MessageChannel()
        senders.append(ch.port1)
        receivers.append(ch.port2)
    return senders, receivers


def ours(
    how: str, policy: actors.SlowMemberPolicy, message: Callable[[], object] = lambda: ATOM
) -> Make:
    """A collection of ``n`` members; ``how`` is ``"post"`` (``post_message``), ``"send"``
    (``await send()``) or ``"single"`` (no collection: ``post_message`` on each port)."""

    def make(n: int, buffer: int) -> Side:
        senders, receivers = _ports(n)
        coll = actors.PortCollection(senders, max_queued=buffer, policy=policy)
        msg = message()
        post, send = coll.post_message, coll.send
        got: list[object] = []

        if how == "post":

            async def broadcast() -> None:
                post(msg)

        elif how == "send":

            async def broadcast() -> None:
                await send(msg)

        else:

            async def broadcast() -> None:
                for port in senders:
                    port.post_message(msg)

        async def drain() -> None:
            got.clear()  # keep only the last broadcast's values (as many as members)
            for port in receivers:
                got.append((await port.receive()).data)

        def check() -> None:
            if how != "single":
                stats = coll.statistics()
                assert stats.members == n, stats
                assert stats.dropped == stats.disconnected == 0, stats
            if got:  # drained: every member got the last message, each its own clone
                assert len(got) == n, len(got)
                assert all(value == msg for value in got)
                if type(msg) is dict:
                    assert len({id(value) for value in got} | {id(msg)}) == n + 1

        def close() -> None:
            for port in senders + receivers:
                port.close()

        return Side(broadcast, drain, close, check)

    return make


def raw(message: Callable[[], object] = lambda: ATOM, deepcopy: bool = False) -> Make:
    """``n`` memory channels of ``buffer`` each: the loop ``s.send_nowait(msg)`` over them."""

    def make(n: int, buffer: int) -> Side:
        pairs = [trio.open_memory_channel[object](buffer) for _ in range(n)]
        sends = [send for send, _ in pairs]
        receives = [receive for _, receive in pairs]
        msg = message()
        got: list[object] = []

        if deepcopy:
            clone = copy.deepcopy

            async def broadcast() -> None:
                for s in sends:
                    s.send_nowait(clone(msg))

        else:

            async def broadcast() -> None:
                for s in sends:
                    s.send_nowait(msg)

        async def drain() -> None:
            got.clear()
            for receive in receives:
                got.append(await receive.receive())

        def check() -> None:
            assert all(value == msg for value in got), got

        def close() -> None:
            for send, receive in pairs:
                send.close()
                receive.close()

        return Side(broadcast, drain, close, check)

    return make


async def timed(make: Make, n: int, broadcasts: int, drain: bool) -> float:
    """Seconds per broadcast: ``broadcasts`` of them to ``n`` fresh members, each timed alone,
    the receivers drained after each one (untimed) if ``drain``."""
    side = make(n, broadcasts)
    total = 0.0
    for _ in range(broadcasts):
        t0 = perf_counter()
        await side.broadcast()
        total += perf_counter() - t0
        if drain:
            await side.drain()
    side.check()
    side.close()
    return total / broadcasts


def runner(make: Make, config: Config, drain: bool = True) -> Callable[[], float]:
    return lambda: trio.run(timed, make, config.members, config.broadcasts, drain)


# -- 5. memory ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemorySample:
    """Traced bytes: for the members, and for ``broadcasts`` queued messages on top."""

    members: int
    queued: int


async def ours_memory(n: int, broadcasts: int, collection: bool) -> MemorySample:
    """Members (``port1`` in a collection if ``collection``), then the queued broadcasts."""
    keep: list[actors.MessagePort] = []
    coll = actors.PortCollection(max_queued=broadcasts)
    before = traced_now()
    for _ in range(n):
        ch = actors.MessageChannel()
        keep += (ch.port1, ch.port2)
        if collection:
            coll.add(ch.port1)
    del ch
    members = traced_now() - before
    queued = 0
    if collection:
        for _ in range(broadcasts):
            coll.post_message(ATOM)
        queued = traced_now() - before - members
        assert coll.statistics().delivered == n * broadcasts
    for port in keep:
        port.close()
    return MemorySample(members, queued)


async def raw_memory(n: int, broadcasts: int, collection: bool) -> MemorySample:
    """Memory channel pairs of ``broadcasts`` each, then ``broadcasts`` ints in each."""
    keep: list[trio.abc.AsyncResource] = []
    before = traced_now()
    for _ in range(n):
        send, receive = trio.open_memory_channel[object](broadcasts)
        keep += (send, receive)
    del send, receive
    members = traced_now() - before
    sends = [s for s in keep if isinstance(s, trio.MemorySendChannel)]
    before_queued = traced_now()
    for _ in range(broadcasts):
        for s in sends:
            s.send_nowait(ATOM)
    queued = traced_now() - before_queued
    for channel in keep:
        assert isinstance(channel, trio.MemorySendChannel | trio.MemoryReceiveChannel)
        channel.close()
    return MemorySample(members, queued)


def memory_runner(
    fn: Callable[[int, int, bool], Awaitable[MemorySample]],
    config: Config,
    collection: bool,
    queued: list[float],
) -> Callable[[], float]:
    """A repeat under tracemalloc: returns bytes per member, appends bytes per queued message."""

    def run() -> float:
        tracemalloc.start()
        try:
            sample = trio.run(fn, config.members, config.broadcasts, collection)
        finally:
            tracemalloc.stop()
        queued.append(sample.queued / (config.members * config.broadcasts))
        return sample.members / config.members

    return run


# -- running and reporting ----------------------------------------------------------------


def _us(series: Series) -> str:
    return f"{series.median * 1e6:.1f} µs"


def run_all(config: Config) -> list[Row]:
    n, b, repeats = config.members, config.broadcasts, config.repeats
    wait, drop = actors.SlowMemberPolicy.WAIT, actors.SlowMemberPolicy.DROP_OLDEST
    rows: list[Row] = []

    def row(
        figure: str, mine: Series, base: Series, label: str, target: float | None = None
    ) -> None:
        ratio = mine.median / base.median
        rows.append(
            Row(
                figure,
                _us(mine),
                f"{_us(base)} {label}",
                ratio,
                "(reference)" if target is None else f"<= {target:.3f}",
                None if target is None else ratio <= target,
                noise(mine, base),
            )
        )

    print(f"1-3: {b} broadcasts of an int to {n} members per run, drained, {repeats} repeats")
    raw1, post1 = Series("raw loop"), Series("ours post_message")
    send2, send2d, post2d = Series("send WAIT"), Series("send DROP"), Series("post DROP")
    single3 = Series("single posts")
    interleave(
        repeats,
        [
            (post1, runner(ours("post", wait), config)),
            (raw1, runner(raw(), config)),
            (send2, runner(ours("send", wait), config)),
            (send2d, runner(ours("send", drop), config)),
            (post2d, runner(ours("post", drop), config)),
            (single3, runner(ours("single", wait), config)),
        ],
    )
    print(f"1n: the same, not drained (queues grow to {b}), {repeats} repeats")
    raw1n, post1n = Series("raw loop, not drained"), Series("ours post, not drained")
    interleave(
        repeats,
        [
            (post1n, runner(ours("post", wait), config, drain=False)),
            (raw1n, runner(raw(), config, drain=False)),
        ],
    )
    print(f"4: {b} broadcasts of {small_dict()} to {n} members per run, {repeats} repeats")
    post4, raw4, deep4 = Series("ours dict"), Series("raw dict"), Series("raw deepcopy")
    interleave(
        repeats,
        [
            (post4, runner(ours("post", wait, small_dict), config)),
            (raw4, runner(raw(small_dict), config)),
            (deep4, runner(raw(small_dict, deepcopy=True), config)),
        ],
    )
    print(f"5: memory of {n} members under tracemalloc, {repeats} repeats")
    mem5, raw5, chan5 = Series("ours member"), Series("raw pair"), Series("channel alone")
    queued_ours: list[float] = []
    queued_raw: list[float] = []
    interleave(
        repeats,
        [
            (mem5, memory_runner(ours_memory, config, True, queued_ours)),
            (raw5, memory_runner(raw_memory, config, True, queued_raw)),
            (chan5, memory_runner(ours_memory, config, False, [])),
        ],
    )

    row("1 post_message, WAIT", post1, raw1, "raw loop", TARGET)
    row("1n same, not drained", post1n, raw1n, "raw loop, not drained")
    row("2 await send(), WAIT", send2, raw1, "raw loop")
    row("2d await send(), DROP_OLDEST", send2d, raw1, "raw loop")
    row("2p post_message, DROP_OLDEST", post2d, raw1, "raw loop")
    row("3 single port.post_message", single3, raw1, "raw loop")
    row("4 small dict, a clone each", post4, raw4, "raw loop, shared")
    row("4d small dict, a clone each", post4, deep4, "raw loop + deepcopy")

    for figure, mine, base, label in [
        ("5 memory / member", mem5, raw5, "raw pair"),
        ("5c memory / member", mem5, chan5, "channel, no collection"),
    ]:
        rows.append(
            Row(
                figure,
                f"{mine.median:.0f} B",
                f"{base.median:.0f} B {label}",
                mine.median / base.median,
                "(reference)",
                None,
                noise(mine, base),
            )
        )
    # the warm-up run of each side is in the lists too: leave it out, as interleave does
    q_ours = Series("queued ours", queued_ours[1:])
    q_raw = Series("queued raw", queued_raw[1:])
    rows.append(
        Row(
            "5q memory / queued message",
            f"{q_ours.median:.1f} B",
            f"{q_raw.median:.1f} B raw",
            q_ours.median / q_raw.median,
            "(reference)",
            None,
            noise(q_ours, q_raw),
        )
    )
    return rows


# -- --profile: where our time goes ---------------------------------------------------------


async def breakdown(n: int, broadcasts: int) -> dict[str, float]:
    """Seconds per broadcast of each step, the receivers drained (untimed) after each."""
    senders, receivers = _ports(n)
    coll = actors.PortCollection(senders, max_queued=broadcasts)
    pairs = [trio.open_memory_channel[object](broadcasts) for _ in range(n)]
    sends = [send for send, _ in pairs]

    async def lone() -> None:
        for port in senders:
            port.post_message(ATOM)

    async def raw_loop() -> None:
        for s in sends:
            s.send_nowait(ATOM)

    async def snapshot() -> None:
        len(coll)

    async def post() -> None:
        coll.post_message(ATOM)

    async def floor() -> None:
        for _ in sends:
            pass

    steps: dict[str, Callable[[], Awaitable[None]]] = {
        "the loop alone (for _ in a list)": floor,
        "raw: s.send_nowait(7)": raw_loop,
        "len(coll): the membership snapshot alone": snapshot,
        "port.post_message(7), no collection": lone,
        "coll.post_message(7)": post,
    }
    out = dict.fromkeys(steps, 0.0)
    for _ in range(broadcasts):
        for name, step in steps.items():
            t0 = perf_counter()
            await step()
            out[name] += perf_counter() - t0
            if step in (lone, post):
                for port in receivers:
                    await port.receive()
            elif step is raw_loop:
                for _, receive in pairs:
                    await receive.receive()
    for port in senders + receivers:
        port.close()
    return {name: seconds / broadcasts for name, seconds in out.items()}


async def profiled_broadcasts(n: int, broadcasts: int, profiler: cProfile.Profile) -> None:
    """Figure 1's broadcasts under ``profiler`` (enabled around each broadcast only)."""
    senders, receivers = _ports(n)
    coll = actors.PortCollection(senders, max_queued=broadcasts)
    for _ in range(broadcasts):
        profiler.enable()
        coll.post_message(ATOM)
        profiler.disable()
        for port in receivers:
            await port.receive()
    for port in senders + receivers:
        port.close()


def profile(config: Config, top: int) -> None:
    n, b = config.members, config.broadcasts
    print(f"\nfigure 1 step by step: ns per member (median of {config.repeats} runs, {b} each)")
    runs = []
    for _ in range(config.repeats):
        gc.collect()
        runs.append(trio.run(breakdown, n, b))
    for step in runs[0]:
        ns = statistics.median(r[step] for r in runs) / n * 1e9
        print(f"{ns:9.1f}  {step}")
    profiler = cProfile.Profile()
    gc.collect()
    trio.run(profiled_broadcasts, n, b, profiler)
    report_profile(f"{b} broadcasts of post_message(7) to {n} members", profiler, top)


def footnote(config: Config) -> str:
    per_member = "" if config.members != 1000 else " (µs per broadcast = ns per member)"
    return (
        f"times: one broadcast to {config.members} members{per_member}; bytes: per member, "
        "or per queued message (5q).\nratio: ours/baseline.  noise: half the (max - min) / "
        "median of the repeats, ours/baseline."
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(
        __doc__,
        argv,
        full=FULL,
        quick=QUICK,
        run=lambda config, _: run_all(config),
        footnote=footnote,
        no_node_help="ignored (bench_ports.py's; dev.py passes it on)",
        verdicts="the raw loop",
        profile=profile,
    )


if __name__ == "__main__":
    sys.exit(main())
