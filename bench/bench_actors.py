"""Benchmarks: actors' spawn and ask against bare trio tasks and memory channels, in one run.

    .venv/bin/python bench/bench_actors.py             # full run (7 repeats per figure)
    .venv/bin/python bench/bench_actors.py --quick     # smoke run (3 short repeats)
    .venv/bin/python bench/bench_actors.py --profile   # where our time goes (no figures)
    python3 dev.py bench                               # bench_ports.py, then this full run

Same method as ``bench_ports.py``: every figure is measured against its baseline in the same
process, with repeats interleaved (ours, baseline, baseline, ours, ...); each figure is the
median of its repeats and each ratio is the ratio of the medians. Every measurement is one
``trio.run`` with the clock read inside it. The garbage collector stays on but runs a full
collection before every repeat.

Figures:

1. spawn, per idle actor: N actors, each ``sup.spawn(idle_actor, ch.port2)`` with a fresh
   ``MessageChannel`` (``ch.port1`` kept in a list) in one ``open_supervisor``; ``idle_actor``
   waits in ``async for`` on its port. Baseline: N ``nursery.start_soon(idle_task, receive)``
   with a fresh ``open_memory_channel(inf)`` each (the send end kept in a list), ``idle_task``
   waiting in ``async for``. Time: the spawning loop plus ``wait_all_tasks_blocked()`` (every
   task has run to its first block), divided by N. Memory: in a separate pass under
   ``tracemalloc`` (which slows everything down, so it never overlaps the timing), the traced
   bytes after minus before, everything kept alive and a full collection before each reading,
   divided by N. For reference: the same time with the garbage collector disabled during
   the run (at 10k the GC's full passes over every live task are most of the time, and they
   grow with the number of objects each actor keeps), ours against a lone task without a
   channel (``start_soon(trio.sleep_forever)``, the issue's "bare trio task"), and the
   teardown (cancel, until the nursery or supervisor block has exited).
2. ask round trip: ``await actors.ask(port, i)`` to an echo actor that does
   ``async for ev in port: ev.reply(ev.data)``. Baseline: a raw request/reply over two memory
   channels made once: the client ``send_nowait((i, reply_send))`` on the request channel and
   ``await reply_receive.receive()``; the server task ``async for value, reply in requests:
   reply.send_nowait(value)``. (``send_nowait`` rather than ``await send()``: the stricter
   baseline, as ``bench_ports.py``'s ping-pong.) For reference: the same ask made from inside
   an actor (its reply channels are then owned by that actor), and a plain port ping-pong with
   the same echo actor answering by ``post_message`` on its own port (no ask).

``--profile`` prints, instead of the figures: the spawn path step by step (with the time
spent in the GC), the objects the GC tracks per actor against a bare task, and cProfile of
the spawning, the teardown (both with the GC off) and the asks, with the share of each
function of ``actors/``.
"""

from __future__ import annotations

import cProfile
import gc
import math
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio
import trio.testing
from _harness import (  # this script's folder
    Row,
    Series,
    interleave,
    noise,
    report_profile,
    run_main,
    traced_now,
    trio_runner,
)

import actors

perf_counter = time.perf_counter

SPAWN_TARGET = 3.0
"""Spawn: ours within 3x a bare task (time and memory per actor)."""
ASK_TARGET = 2.0
"""ask: within 2x a raw request/reply over two memory channels."""
PYKKA = "pykka (issue, not measured here): 860 µs and 24 KB per actor, 73 µs per ask"


@dataclass(frozen=True)
class Config:
    repeats: int
    actors: int
    rounds: int


FULL = Config(repeats=7, actors=10_000, rounds=20_000)
QUICK = Config(repeats=3, actors=2_000, rounds=2_000)


# -- 1. spawn -----------------------------------------------------------------------------


async def idle_task(receive: trio.MemoryReceiveChannel[object]) -> None:
    async for _ in receive:
        pass


async def idle_actor(port: actors.MessagePort) -> None:
    async for _ in port:
        pass


@dataclass(frozen=True)
class SpawnSample:
    """One spawn run: seconds (or traced bytes) for all N, and the teardown's seconds."""

    spawn: float
    teardown: float


class Probe:
    """``--profile``'s hooks into a spawn run; the figures run without one."""

    def spawning(self) -> None:
        """Just before the spawning loop."""

    def spawned(self) -> None:
        """Every task has reached its first block (the timed part is over)."""

    def stopped(self) -> None:
        """The teardown is over: the nursery (supervisor) block has exited."""


class SpawnClock:
    """The readings of one spawn run: ``start()`` just before the spawning loop, ``spawned()``
    once every task has blocked, then the block's cancel, and ``stopped()`` once the nursery
    (supervisor) block has exited. Plain calls, so no object of its own is alive when the GC
    census or tracemalloc is read."""

    def __init__(self, traced: bool, probe: Probe | None) -> None:
        self.traced = traced
        self.probe = probe
        self.before = self.used = 0
        self.t0 = self.t1 = self.elapsed = 0.0

    def start(self) -> None:
        self.before = traced_now() if self.traced else 0
        if self.probe is not None:
            self.probe.spawning()
        self.t0 = perf_counter()

    def spawned(self) -> None:
        self.elapsed = perf_counter() - self.t0
        if self.probe is not None:
            self.probe.spawned()
        self.used = traced_now() - self.before if self.traced else 0
        self.t1 = perf_counter()

    def stopped(self) -> SpawnSample:
        teardown = perf_counter() - self.t1
        if self.probe is not None:
            self.probe.stopped()
        return SpawnSample(self.used if self.traced else self.elapsed, teardown)


async def bare_spawn(n: int, traced: bool, probe: Probe | None = None) -> SpawnSample:
    keep: list[trio.MemorySendChannel[object]] = []
    clock = SpawnClock(traced, probe)
    async with trio.open_nursery() as nursery:
        clock.start()
        for _ in range(n):
            send, receive = trio.open_memory_channel[object](math.inf)
            keep.append(send)
            nursery.start_soon(idle_task, receive)
        del receive
        await trio.testing.wait_all_tasks_blocked()
        clock.spawned()
        nursery.cancel_scope.cancel()
    sample = clock.stopped()
    for send in keep:
        send.close()
    return sample


async def lone_spawn(n: int, traced: bool, probe: Probe | None = None) -> SpawnSample:
    """A bare task and nothing else (the issue's "bare trio task"), for reference."""
    clock = SpawnClock(traced, probe)
    async with trio.open_nursery() as nursery:
        clock.start()
        for _ in range(n):
            nursery.start_soon(trio.sleep_forever)
        await trio.testing.wait_all_tasks_blocked()
        clock.spawned()
        nursery.cancel_scope.cancel()
    return clock.stopped()


async def ours_spawn(n: int, traced: bool, probe: Probe | None = None) -> SpawnSample:
    keep: list[actors.MessagePort] = []
    clock = SpawnClock(traced, probe)
    async with actors.open_supervisor() as sup:
        clock.start()
        for _ in range(n):
            ch = actors.MessageChannel()
            keep.append(ch.port1)
            sup.spawn(idle_actor, ch.port2)
        del ch
        await trio.testing.wait_all_tasks_blocked()
        clock.spawned()
        sup.cancel()
    sample = clock.stopped()
    for port in keep:
        port.close()
    return sample


def spawn_runner(
    fn: Callable[[int, bool], Awaitable[SpawnSample]],
    n: int,
    traced: bool,
    teardowns: list[float] | None = None,
    gc_off: bool = False,
) -> Callable[[], float]:
    """A repeat of one side: ``trio.run(fn, n, traced)``, under tracemalloc if ``traced``,
    with the garbage collector disabled if ``gc_off``."""

    def run() -> float:
        if traced:
            tracemalloc.start()
        if gc_off:
            gc.disable()
        try:
            sample = trio.run(fn, n, traced)
        finally:
            gc.enable()
            if traced:
                tracemalloc.stop()
        if teardowns is not None:
            teardowns.append(sample.teardown)
        return sample.spawn

    return run


# -- 2. ask round trip --------------------------------------------------------------------


async def echo_actor(port: actors.MessagePort) -> None:
    async for event in port:
        event.reply(event.data)


async def echo_port_actor(port: actors.MessagePort) -> None:
    async for event in port:
        port.post_message(event.data)


async def ours_ask(rounds: int) -> float:
    ask = actors.ask
    async with actors.open_supervisor() as sup:
        ch = actors.MessageChannel()
        port = ch.port1
        sup.spawn(echo_actor, ch.port2)
        t0 = perf_counter()
        for i in range(rounds):
            await ask(port, i)
        elapsed = perf_counter() - t0
        sup.cancel()
    port.close()
    return elapsed


async def ours_ask_in_actor(rounds: int) -> float:
    """As ``ours_ask``, with the client an actor too (it owns the reply channels it makes)."""
    ask = actors.ask
    result: list[float] = []
    async with actors.open_supervisor() as sup:

        async def client(port: actors.MessagePort) -> None:
            t0 = perf_counter()
            for i in range(rounds):
                await ask(port, i)
            result.append(perf_counter() - t0)
            sup.cancel()

        ch = actors.MessageChannel()
        sup.spawn(echo_actor, ch.port2)
        sup.spawn(client, ch.port1)
    return result[0]


async def ours_port_ping_pong(rounds: int) -> float:
    async with actors.open_supervisor() as sup:
        ch = actors.MessageChannel()
        port = ch.port1
        sup.spawn(echo_port_actor, ch.port2)
        t0 = perf_counter()
        for i in range(rounds):
            port.post_message(i)
            (await port.receive()).data  # noqa: B018 - a client reads its reply
        elapsed = perf_counter() - t0
        sup.cancel()
    port.close()
    return elapsed


Request = tuple[int, trio.MemorySendChannel[int]]


async def raw_request_reply(rounds: int) -> float:
    request_send, request_receive = trio.open_memory_channel[Request](math.inf)
    reply_send, reply_receive = trio.open_memory_channel[int](math.inf)

    async def server() -> None:
        async for value, reply in request_receive:
            reply.send_nowait(value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        t0 = perf_counter()
        for i in range(rounds):
            request_send.send_nowait((i, reply_send))
            await reply_receive.receive()
        elapsed = perf_counter() - t0
        request_send.close()
    reply_send.close()
    reply_receive.close()
    return elapsed


# -- running and reporting ----------------------------------------------------------------


def _teardown_series(name: str, samples: list[float]) -> Series:
    """The teardowns recorded during the timing pass (its warm-up run left out)."""
    return Series(name, samples[1:])


def run_all(config: Config) -> list[Row]:
    n, rounds, repeats = config.actors, config.rounds, config.repeats
    rows: list[Row] = []

    print(f"1: {n} actors (tasks) per run, {repeats} repeats; time pass, then memory pass")
    ours_t, bare_t = Series("ours spawn"), Series("bare spawn")
    ours_g, bare_g = Series("ours spawn, GC off"), Series("bare spawn, GC off")
    lone_t = Series("lone task spawn")
    ours_down: list[float] = []
    bare_down: list[float] = []
    interleave(
        repeats,
        [
            (ours_t, spawn_runner(ours_spawn, n, False, ours_down)),
            (bare_t, spawn_runner(bare_spawn, n, False, bare_down)),
            (ours_g, spawn_runner(ours_spawn, n, False, gc_off=True)),
            (bare_g, spawn_runner(bare_spawn, n, False, gc_off=True)),
            (lone_t, spawn_runner(lone_spawn, n, False)),
        ],
    )
    ours_m, bare_m = Series("ours memory"), Series("bare memory")
    lone_m = Series("lone task memory")
    interleave(
        repeats,
        [
            (ours_m, spawn_runner(ours_spawn, n, True)),
            (bare_m, spawn_runner(bare_spawn, n, True)),
            (lone_m, spawn_runner(lone_spawn, n, True)),
        ],
    )
    us_ours, us_bare = ours_t.median / n * 1e6, bare_t.median / n * 1e6
    rows.append(
        Row(
            "1 spawn time / actor",
            f"{us_ours:.2f} µs",
            f"{us_bare:.2f} µs bare task",
            us_ours / us_bare,
            f"<= {SPAWN_TARGET:.3f}",
            us_ours / us_bare <= SPAWN_TARGET,
            noise(ours_t, bare_t),
        )
    )
    us_ours_g, us_bare_g = ours_g.median / n * 1e6, bare_g.median / n * 1e6
    rows.append(
        Row(
            "1g spawn time, GC off",
            f"{us_ours_g:.2f} µs",
            f"{us_bare_g:.2f} µs bare task",
            us_ours_g / us_bare_g,
            "(reference)",
            None,
            noise(ours_g, bare_g),
        )
    )
    kb_ours, kb_bare = ours_m.median / n / 1024, bare_m.median / n / 1024
    rows.append(
        Row(
            "1m spawn memory / actor",
            f"{kb_ours:.2f} KB",
            f"{kb_bare:.2f} KB bare task",
            kb_ours / kb_bare,
            f"<= {SPAWN_TARGET:.3f}",
            kb_ours / kb_bare <= SPAWN_TARGET,
            noise(ours_m, bare_m),
        )
    )
    us_lone, kb_lone = lone_t.median / n * 1e6, lone_m.median / n / 1024
    rows.append(
        Row(
            "1b spawn vs a lone task",
            f"{us_ours:.2f} µs",
            f"{us_lone:.2f} µs no channel",
            us_ours / us_lone,
            "(reference)",
            None,
            noise(ours_t, lone_t),
        )
    )
    rows.append(
        Row(
            "1bm memory vs a lone task",
            f"{kb_ours:.2f} KB",
            f"{kb_lone:.2f} KB no channel",
            kb_ours / kb_lone,
            "(reference)",
            None,
            noise(ours_m, lone_m),
        )
    )
    ours_d = _teardown_series("ours teardown", ours_down)
    bare_d = _teardown_series("bare teardown", bare_down)
    us_ours_d, us_bare_d = ours_d.median / n * 1e6, bare_d.median / n * 1e6
    rows.append(
        Row(
            "1t teardown / actor",
            f"{us_ours_d:.2f} µs",
            f"{us_bare_d:.2f} µs bare task",
            us_ours_d / us_bare_d,
            "(reference)",
            None,
            noise(ours_d, bare_d),
        )
    )

    print(f"2: {rounds} round trips per run, {repeats} repeats")
    ask2, raw2 = Series("ours ask"), Series("raw request/reply")
    ask2a, ping2 = Series("ours ask in actor"), Series("ours port ping-pong")
    interleave(
        repeats,
        [
            (ask2, trio_runner(ours_ask, rounds)),
            (raw2, trio_runner(raw_request_reply, rounds)),
            (ask2a, trio_runner(ours_ask_in_actor, rounds)),
            (ping2, trio_runner(ours_port_ping_pong, rounds)),
        ],
    )
    us_raw = raw2.median / rounds * 1e6
    baseline = f"{us_raw:.2f} µs raw"
    for figure, series, target in [
        ("2 ask round trip", ask2, ASK_TARGET),
        ("2a ask, asker an actor", ask2a, None),
        ("2p port ping-pong (no ask)", ping2, None),
    ]:
        us = series.median / rounds * 1e6
        rows.append(
            Row(
                figure,
                f"{us:.2f} µs",
                baseline,
                us / us_raw,
                "(reference)" if target is None else f"<= {target:.3f}",
                None if target is None else us / us_raw <= target,
                noise(series, raw2),
            )
        )
    return rows


# -- --profile: where our time goes ---------------------------------------------------------


class GcClock:
    """Time spent in the cyclic garbage collector while installed (``with GcClock() as c``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = perf_counter()
        else:
            self.seconds += perf_counter() - self._start
            self.collections[info["generation"]] += 1

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def spawn_breakdown(n: int) -> dict[str, tuple[float, float]]:
    """(seconds, of which in the GC) for each step of the spawn figure, ours and bare."""
    out: dict[str, tuple[float, float]] = {}
    clock = GcClock()

    def lap(step: str, t0: float, gc0: float) -> None:
        out[step] = (perf_counter() - t0, clock.seconds - gc0)

    with clock:
        ports: list[actors.MessagePort] = []
        async with actors.open_supervisor() as sup:
            t0, gc0 = perf_counter(), clock.seconds
            channels = [actors.MessageChannel() for _ in range(n)]
            lap("MessageChannel()", t0, gc0)
            t0, gc0 = perf_counter(), clock.seconds
            for ch in channels:
                ports.append(ch.port1)
                sup.spawn(idle_actor, ch.port2)
            lap("sup.spawn() (the call alone)", t0, gc0)
            del channels
            t0, gc0 = perf_counter(), clock.seconds
            await trio.testing.wait_all_tasks_blocked()
            lap("actor tasks' first run, to their first block", t0, gc0)
            t0, gc0 = perf_counter(), clock.seconds
            sup.cancel()
        lap("teardown (sup.cancel() until the block exited)", t0, gc0)
        for port in ports:
            port.close()
        gc.collect()
        keep: list[trio.MemorySendChannel[object]] = []
        async with trio.open_nursery() as nursery:
            t0, gc0 = perf_counter(), clock.seconds
            pairs = [trio.open_memory_channel[object](math.inf) for _ in range(n)]
            lap("  bare: open_memory_channel(inf)", t0, gc0)
            t0, gc0 = perf_counter(), clock.seconds
            for send, receive in pairs:
                keep.append(send)
                nursery.start_soon(idle_task, receive)
            lap("  bare: nursery.start_soon() (the call alone)", t0, gc0)
            del pairs
            t0, gc0 = perf_counter(), clock.seconds
            await trio.testing.wait_all_tasks_blocked()
            lap("  bare: tasks' first run, to their first block", t0, gc0)
            t0, gc0 = perf_counter(), clock.seconds
            nursery.cancel_scope.cancel()
        lap("  bare: teardown", t0, gc0)
    return out


def _census() -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        counts[name] = counts.get(name, 0) + 1
    return counts


class CensusProbe(Probe):
    """Objects the GC tracks, by type, added by the spawning (all tasks blocked, all alive)."""

    def __init__(self) -> None:
        self.before: dict[str, int] = {}
        self.added: dict[str, int] = {}

    def spawning(self) -> None:
        gc.collect()
        self.before = _census()

    def spawned(self) -> None:
        gc.collect()
        after = _census()
        self.added = {k: v - self.before.get(k, 0) for k, v in after.items()}


class ProfileProbe(Probe):
    """cProfile around the spawning (loop and first runs), and around the teardown."""

    def __init__(self) -> None:
        self.spawn = cProfile.Profile()
        self.teardown = cProfile.Profile()

    def spawning(self) -> None:
        self.spawn.enable()

    def spawned(self) -> None:
        self.spawn.disable()
        self.teardown.enable()

    def stopped(self) -> None:
        self.teardown.disable()


def _profiled(run: Callable[[], object]) -> cProfile.Profile:
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    return profiler


def profile(config: Config, top: int) -> None:
    n, rounds = config.actors, config.rounds
    print(f"\nspawn step by step, GC on: µs per actor (median of {config.repeats} runs of {n})")
    runs = []
    for _ in range(config.repeats):
        gc.collect()
        runs.append(trio.run(spawn_breakdown, n))
    print("     time  of which GC  step")
    for step in runs[0]:
        us = statistics.median(r[step][0] for r in runs) / n * 1e6
        us_gc = statistics.median(r[step][1] for r in runs) / n * 1e6
        print(f"{us:9.2f}  {us_gc:11.2f}  {step}")

    print(f"\nobjects the GC tracks, per idle actor (task), {n} of them: ours, bare, type")
    census = {}
    for label, fn in [("ours", ours_spawn), ("bare", bare_spawn)]:
        counter = CensusProbe()
        trio.run(fn, n, False, counter)
        census[label] = {k: v / n for k, v in counter.added.items()}
    ours, bare = census["ours"], census["bare"]
    names = sorted({*ours, *bare}, key=lambda k: -max(ours.get(k, 0), bare.get(k, 0)))
    for name in names:
        a, b = ours.get(name, 0.0), bare.get(name, 0.0)
        if max(abs(a), abs(b)) >= 0.5:
            print(f"  {a:6.2f} {b:6.2f}  {name}")
    print(f"  {sum(ours.values()):6.2f} {sum(bare.values()):6.2f}  (all)")

    print("\ncProfile: spawn and teardown with the GC off (else its pauses land on whichever")
    print("function allocates); the asks with the GC on.")
    for label, fn in [("ours", ours_spawn), ("bare", bare_spawn)]:
        probe = ProfileProbe()
        gc.collect()
        gc.disable()
        try:
            trio.run(fn, n, False, probe)
        finally:
            gc.enable()
        report_profile(f"{label}: spawn of {n} (loop + wait_all_tasks_blocked)", probe.spawn, top)
        report_profile(f"{label}: teardown of {n}", probe.teardown, top)
    report_profile(f"{rounds} asks", _profiled(lambda: trio.run(ours_ask, rounds)), top)
    report_profile(
        f"{rounds} asks from an actor",
        _profiled(lambda: trio.run(ours_ask_in_actor, rounds)),
        top,
    )


FOOTNOTE = (
    "ratio: ours/baseline (time or bytes per actor, time per round trip).\n"
    "noise: half the (max - min) / median of the repeats, ours/baseline.\n" + PYKKA
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(
        __doc__,
        argv,
        full=FULL,
        quick=QUICK,
        run=lambda config, _: run_all(config),
        footnote=lambda _: FOOTNOTE,
        no_node_help="ignored (bench_ports.py's; dev.py passes both)",
        verdicts="baseline",
        profile=profile,
    )


if __name__ == "__main__":
    sys.exit(main())
