"""Benchmarks: actors' MessagePort against raw trio memory channels (and Node), in one run.

    .venv/bin/python bench/bench_ports.py            # full run (9 repeats per figure)
    .venv/bin/python bench/bench_ports.py --quick    # smoke run (3 short repeats)
    python3 dev.py bench                             # the same full run

Every figure is measured against its baseline in the same process, with repeats interleaved
(ours, baseline, baseline, ours, ...) so that drift on a noisy machine hits both sides alike;
each figure is the median of its repeats and each ratio is the ratio of the medians. Every
trio measurement is one ``trio.run`` with the clock read inside it, so the run's start-up and
shut-down are not counted. The garbage collector stays on (it is part of the real cost) but
runs a full collection before every repeat.

Figures:

1. one-way throughput: N small ints posted in batches of ``BATCH`` (a checkpoint, as
   ``trio.sleep(0)``, after each batch), drained by ``async for`` on the peer; baseline
   ``open_memory_channel(inf)`` with ``send_nowait`` and ``async for`` in the same shape.
2. ping-pong: one message bounced between two tasks, ``receive()`` + ``post_message`` on one
   channel; baseline two memory channels (one per direction), ``receive`` + ``send_nowait``.
3. ``onmessage`` dispatch: the same producer as (1) into a port whose ``onmessage`` counts
   and sets a ``trio.Event`` at N; baseline the raw trio figure of (1). Node's own
   MessageChannel runs the same loop (``bench/node_dispatch.js``) when ``node`` is on PATH.
4. structured clone of a 100-key dict of mixed values, against ``copy.deepcopy`` and a
   ``pickle`` round trip.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio
from _harness import Row, Series, interleave, noise, run_main, trio_runner  # this script's folder

import actors

BATCH = 1000
"""Messages the producer posts between two checkpoints (Node: between two ``setImmediate``)."""

NODE_SCRIPT = Path(__file__).with_name("node_dispatch.js")
NODE_WARMUP = 3
"""Untimed loops each Node process runs first, so V8 has compiled the loop it then times."""

perf_counter = time.perf_counter


@dataclass(frozen=True)
class Config:
    repeats: int
    messages: int
    rounds: int
    clone_seconds: float


FULL = Config(repeats=9, messages=50_000, rounds=20_000, clone_seconds=0.1)
QUICK = Config(repeats=3, messages=5_000, rounds=2_000, clone_seconds=0.02)


# -- 1. one-way throughput ----------------------------------------------------------------


async def _produce(post: Callable[[int], object], n: int) -> None:
    """Post ``n`` ints in batches of ``BATCH``, letting other tasks run after each batch."""
    for start in range(0, n, BATCH):
        for i in range(start, min(start + BATCH, n)):
            post(i)
        await trio.lowlevel.checkpoint()  # what trio.sleep(0) does


async def _drain_port(port: actors.MessagePort, n: int) -> None:
    count = 0
    async for event in port:
        event.data  # noqa: B018 - a consumer reads what it receives
        count += 1
        if count == n:
            break


async def _drain_raw(channel: trio.MemoryReceiveChannel[int], n: int) -> None:
    count = 0
    async for value in channel:
        value  # noqa: B018 - the same work as _drain_port's event.data
        count += 1
        if count == n:
            break


async def ours_one_way(n: int) -> float:
    ch = actors.MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_drain_port, ch.port2, n)
        t0 = perf_counter()
        await _produce(ch.port1.post_message, n)
    elapsed = perf_counter() - t0
    ch.port1.close()
    ch.port2.close()
    return elapsed


async def raw_one_way(n: int) -> float:
    send, receive = trio.open_memory_channel[int](math.inf)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_drain_raw, receive, n)
        t0 = perf_counter()
        await _produce(send.send_nowait, n)
    elapsed = perf_counter() - t0
    send.close()
    receive.close()
    return elapsed


# -- 2. ping-pong -------------------------------------------------------------------------


async def ours_ping_pong(rounds: int) -> float:
    ch = actors.MessageChannel()
    a, b = ch.port1, ch.port2

    async def echo() -> None:
        for _ in range(rounds):
            event = await b.receive()
            b.post_message(event.data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        t0 = perf_counter()
        for i in range(rounds):
            a.post_message(i)
            (await a.receive()).data  # noqa: B018
        elapsed = perf_counter() - t0
    a.close()
    b.close()
    return elapsed


async def raw_ping_pong(rounds: int) -> float:
    ping_send, ping_receive = trio.open_memory_channel[int](math.inf)
    pong_send, pong_receive = trio.open_memory_channel[int](math.inf)

    async def echo() -> None:
        for _ in range(rounds):
            value = await ping_receive.receive()
            pong_send.send_nowait(value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        t0 = perf_counter()
        for i in range(rounds):
            ping_send.send_nowait(i)
            await pong_receive.receive()
        elapsed = perf_counter() - t0
    for channel in (ping_send, ping_receive, pong_send, pong_receive):
        channel.close()
    return elapsed


# -- 3. onmessage dispatch ----------------------------------------------------------------


def counting_handler(n: int, done: trio.Event) -> Callable[[actors.MessageEvent], None]:
    """An ``onmessage`` handler that reads each event's data and sets ``done`` at the n-th."""
    count = 0

    def on_message(event: actors.MessageEvent) -> None:
        nonlocal count
        event.data  # noqa: B018
        count += 1
        if count == n:
            done.set()

    return on_message


async def ours_dispatch(n: int) -> float:
    ch = actors.MessageChannel()
    done = trio.Event()
    ch.port2.onmessage = counting_handler(n, done)
    t0 = perf_counter()
    await _produce(ch.port1.post_message, n)
    await done.wait()
    elapsed = perf_counter() - t0
    ch.port1.close()
    ch.port2.close()
    return elapsed


def node_dispatch(node: str, n: int) -> float:
    """One Node process: ``NODE_WARMUP`` untimed loops, then one timed loop of ``n``."""
    out = subprocess.run(
        [node, str(NODE_SCRIPT), str(n), str(BATCH), str(NODE_WARMUP)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(json.loads(out.stdout)["seconds"])


# -- 4. structured clone ------------------------------------------------------------------


def clone_payload() -> dict[str, object]:
    """100 keys: one datetime, one tuple, and 98 values cycling through seven other kinds."""
    kinds: list[Callable[[int], object]] = [
        lambda i: i * 7919,
        lambda i: i / 7,
        lambda i: f"value-{i}",
        lambda i: None,
        lambda i: i % 2 == 0,
        lambda i: [i, i + 1, i + 2, i + 3],
        lambda i: {"id": i, "name": f"n{i}", "score": i * 0.5},
    ]
    payload: dict[str, object] = {
        "when": datetime.datetime(2026, 11, 23, 12, 30, 5, 250_000),
        "pair": (17, "seventeen", 1.7),
    }
    for i in range(98):
        payload[f"k{i:02d}"] = kinds[i % len(kinds)](i)
    return payload


def _pickle_round_trip(value: object) -> object:
    return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _loops_for(fn: Callable[[object], object], value: object, seconds: float) -> int:
    """How many calls of ``fn(value)`` take about ``seconds`` (after a short warm-up)."""
    for _ in range(20):
        fn(value)
    t0 = perf_counter()
    for _ in range(100):
        fn(value)
    per_call = (perf_counter() - t0) / 100
    return max(1, round(seconds / per_call))


def _timed_clone(fn: Callable[[object], object], value: object, loops: int) -> float:
    """Seconds per call, averaged over ``loops`` calls."""
    t0 = perf_counter()
    for _ in range(loops):
        fn(value)
    return (perf_counter() - t0) / loops


# -- running and reporting ----------------------------------------------------------------


def _rate(series: Series, n: int) -> str:
    return f"{n / series.median / 1e6:.3f} M msg/s"


def run_all(config: Config, node: str | None) -> list[Row]:
    n, rounds = config.messages, config.rounds
    rows: list[Row] = []

    print(f"1-3: {n} messages per run, {rounds} ping-pong rounds, {config.repeats} repeats")
    ours1, raw1 = Series("ours one-way"), Series("raw one-way")
    ours3, node3 = Series("ours onmessage"), Series("node onmessage")
    sides: list[tuple[Series, Callable[[], float]]] = [
        (ours1, trio_runner(ours_one_way, n)),
        (raw1, trio_runner(raw_one_way, n)),
        (ours3, trio_runner(ours_dispatch, n)),
    ]
    if node is not None:
        sides.append((node3, lambda: node_dispatch(node, n)))
    interleave(config.repeats, sides)
    ratio1 = raw1.median / ours1.median
    rows.append(
        Row(
            "1 one-way async for",
            _rate(ours1, n),
            _rate(raw1, n) + " raw",
            ratio1,
            ">= 0.667",
            ratio1 >= 2 / 3,
            noise(ours1, raw1),
        )
    )

    ours2, raw2 = Series("ours ping-pong"), Series("raw ping-pong")
    interleave(
        config.repeats,
        [(ours2, trio_runner(ours_ping_pong, rounds)), (raw2, trio_runner(raw_ping_pong, rounds))],
    )
    us_ours, us_raw = ours2.median / rounds * 1e6, raw2.median / rounds * 1e6
    rows.append(
        Row(
            "2 ping-pong round trip",
            f"{us_ours:.2f} µs",
            f"{us_raw:.2f} µs raw",
            us_ours / us_raw,
            "<= 1.500",
            us_ours / us_raw <= 1.5,
            noise(ours2, raw2),
        )
    )

    ratio3 = raw1.median / ours3.median
    rows.append(
        Row(
            "3 onmessage dispatch",
            _rate(ours3, n),
            _rate(raw1, n) + " raw(1)",
            ratio3,
            ">= 2.000",
            ratio3 >= 2.0,
            noise(ours3, raw1),
        )
    )
    if node is not None:
        rows.append(
            Row(
                "3n node onmessage",
                _rate(node3, n),
                _rate(raw1, n) + " raw(1)",
                raw1.median / node3.median,
                "(reference)",
                None,
                noise(node3, raw1),
            )
        )

    payload = clone_payload()
    assert actors.structured_clone(payload) == payload
    candidates: list[tuple[str, Callable[[object], object]]] = [
        ("structured_clone", actors.structured_clone),
        ("deepcopy", copy.deepcopy),
        ("pickle", _pickle_round_trip),
    ]
    loops = {name: _loops_for(fn, payload, config.clone_seconds) for name, fn in candidates}
    print(f"4: {len(payload)}-key dict; loops per repeat: {loops}")
    series4 = {name: Series(name) for name, _ in candidates}

    def clone_run(name: str, fn: Callable[[object], object]) -> Callable[[], float]:
        return lambda: _timed_clone(fn, payload, loops[name])

    interleave(config.repeats, [(series4[name], clone_run(name, fn)) for name, fn in candidates])
    ours4, deep4, pickle4 = series4["structured_clone"], series4["deepcopy"], series4["pickle"]
    rows.append(
        Row(
            "4 clone vs deepcopy",
            f"{ours4.median * 1e6:.2f} µs",
            f"{deep4.median * 1e6:.2f} µs deepcopy",
            ours4.median / deep4.median,
            "<= 0.333",
            ours4.median / deep4.median <= 1 / 3,
            noise(ours4, deep4),
        )
    )
    rows.append(
        Row(
            "4p clone vs pickle",
            f"{ours4.median * 1e6:.2f} µs",
            f"{pickle4.median * 1e6:.2f} µs pickle",
            ours4.median / pickle4.median,
            "(reference)",
            None,
            noise(ours4, pickle4),
        )
    )
    return rows


FOOTNOTE = (
    "ratio: ours/raw throughput for 1 and 3 (node/raw for 3n); ours/baseline time for 2 "
    "and 4.\nnoise: half the (max - min) / median of the repeats, ours/baseline."
)


def find_node(args: argparse.Namespace) -> str | None:
    return None if args.no_node else shutil.which("node")


def print_node(args: argparse.Namespace) -> None:
    node = find_node(args)
    if node is None and not args.no_node:
        print("node is not on PATH: the Node reference is skipped")
    elif node is not None:
        version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
        print(f"node {version.strip()} at {node}")


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(
        __doc__,
        argv,
        full=FULL,
        quick=QUICK,
        run=lambda config, args: run_all(config, find_node(args)),
        footnote=lambda _: FOOTNOTE,
        no_node_help="skip the Node reference",
        preamble=print_node,
    )


if __name__ == "__main__":
    sys.exit(main())
