"""Where the time goes on our side of figures 1, 3 and 4 of bench_ports.py.

    .venv/bin/python bench/profile_ports.py              # per-operation timing breakdown
    .venv/bin/python bench/profile_ports.py --cprofile   # plus cProfile of each figure

The breakdown times one operation at a time, through the public API only, so that it keeps
working while the library's internals change: posting into a queue nobody reads, receiving
from a queue that is already full (no producer, so no scheduling between the two), the
``onmessage`` dispatcher draining a full queue, ``MessageEvent`` construction, and the clone
of the figure-4 payload and of its parts. Each line is the median of ``REPEATS`` runs.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import bench_ports  # the figures' own code: this script's folder is first on sys.path
import trio

import actors

N = 50_000
REPEATS = 7
perf_counter = time.perf_counter


def _median_ns(run: Callable[[], float], per: int) -> float:
    samples = []
    for _ in range(REPEATS):
        gc.collect()
        samples.append(run())
    return statistics.median(samples) / per * 1e9


def _in_trio(fn: Callable[[], Awaitable[float]]) -> Callable[[], float]:
    return lambda: trio.run(fn)


# -- ports: one operation at a time --------------------------------------------------------


async def loop_floor() -> float:
    t0 = perf_counter()
    for _ in range(N):
        pass
    return perf_counter() - t0


async def ours_post() -> float:
    ch = actors.MessageChannel()
    post = ch.port1.post_message
    t0 = perf_counter()
    for i in range(N):
        post(i)
    elapsed = perf_counter() - t0
    ch.port1.close()
    ch.port2.close()
    return elapsed


async def raw_post() -> float:
    send, receive = trio.open_memory_channel[int](math.inf)
    post = send.send_nowait
    t0 = perf_counter()
    for i in range(N):
        post(i)
    elapsed = perf_counter() - t0
    send.close()
    receive.close()
    return elapsed


async def checkpoint_pair() -> float:
    """What any ready ``receive()`` in trio costs at least: its two checkpoint traps."""
    t0 = perf_counter()
    for _ in range(N):
        await trio.lowlevel.checkpoint_if_cancelled()
        await trio.lowlevel.cancel_shielded_checkpoint()
    return perf_counter() - t0


def _filled() -> actors.MessageChannel:
    ch = actors.MessageChannel()
    for i in range(N):
        ch.port1.post_message(i)
    return ch


async def ours_receive_ready() -> float:
    ch = _filled()
    receive = ch.port2.receive
    t0 = perf_counter()
    for _ in range(N):
        (await receive()).data  # noqa: B018
    elapsed = perf_counter() - t0
    ch.port1.close()
    ch.port2.close()
    return elapsed


async def ours_async_for_ready() -> float:
    ch = _filled()
    t0 = perf_counter()
    await bench_ports._drain_port(ch.port2, N)
    elapsed = perf_counter() - t0
    ch.port1.close()
    ch.port2.close()
    return elapsed


async def raw_receive_ready() -> float:
    send, receive_channel = trio.open_memory_channel[int](math.inf)
    for i in range(N):
        send.send_nowait(i)
    receive = receive_channel.receive
    t0 = perf_counter()
    for _ in range(N):
        await receive()
    return perf_counter() - t0


async def raw_async_for_ready() -> float:
    send, receive = trio.open_memory_channel[int](math.inf)
    for i in range(N):
        send.send_nowait(i)
    t0 = perf_counter()
    await bench_ports._drain_raw(receive, N)
    return perf_counter() - t0


async def message_event() -> float:
    target = actors.MessageChannel().port2
    make = actors.MessageEvent
    t0 = perf_counter()
    for i in range(N):
        make("message", data=i, ports=(), target=target)
    return perf_counter() - t0


async def handler_alone() -> float:
    event = actors.MessageEvent("message", data=1, target=actors.MessageChannel().port2)
    handler = bench_ports.counting_handler(N + 1, trio.Event())
    t0 = perf_counter()
    for _ in range(N):
        handler(event)
    return perf_counter() - t0


async def dispatcher_drain() -> float:
    """``onmessage`` set on a port whose queue already holds N messages: the dispatcher alone."""
    ch = _filled()
    done = trio.Event()
    ch.port2.onmessage = bench_ports.counting_handler(N, done)
    t0 = perf_counter()
    await done.wait()
    elapsed = perf_counter() - t0
    ch.port1.close()
    ch.port2.close()
    return elapsed


# -- clone ---------------------------------------------------------------------------------


def _clone_ns(value: object, loops: int) -> float:
    clone = actors.structured_clone

    def run() -> float:
        t0 = perf_counter()
        for _ in range(loops):
            clone(value)
        return perf_counter() - t0

    return _median_ns(run, loops)


def clone_breakdown() -> list[tuple[str, float]]:
    payload = bench_ports.clone_payload()
    atomic = {k: v for k, v in payload.items() if not isinstance(v, list | dict)}
    containers = [v for v in payload.values() if isinstance(v, list | dict)]
    small_dict = next(v for v in containers if isinstance(v, dict))
    small_list = next(v for v in containers if isinstance(v, list))
    return [
        (f"structured_clone(payload)  [{len(payload)} keys, per clone]", _clone_ns(payload, 5000)),
        (f"  its {len(atomic)} atomic values alone, as one dict", _clone_ns(atomic, 5000)),
        (
            f"  one of its {len(containers)} small containers alone: dict",
            _clone_ns(small_dict, 50_000),
        ),
        ("  one of its small containers alone: list of 4 ints", _clone_ns(small_list, 50_000)),
        ("  an int alone (the call's floor)", _clone_ns(1, 50_000)),
        ("  an empty dict alone (a call's fixed cost)", _clone_ns({}, 50_000)),
        ("  dict.copy() of the atomic part (C floor)", _copy_ns(atomic)),
    ]


def _copy_ns(value: dict[str, object]) -> float:
    def run() -> float:
        t0 = perf_counter()
        for _ in range(5000):
            value.copy()
        return perf_counter() - t0

    return _median_ns(run, 5000)


# -- cProfile of the figures ---------------------------------------------------------------


def cprofile_figures(top: int) -> None:
    payload = bench_ports.clone_payload()

    def clones() -> None:
        for _ in range(5000):
            actors.structured_clone(payload)

    figures: list[tuple[str, Callable[[], object]]] = [
        ("figure 1 (ours, async for)", lambda: trio.run(bench_ports.ours_one_way, N)),
        ("figure 3 (ours, onmessage)", lambda: trio.run(bench_ports.ours_dispatch, N)),
        (
            "figure 4 (structured_clone)",
            lambda: [actors.structured_clone(payload) for _ in range(5000)],
        ),
    ]
    for name, run in figures:
        profiler = cProfile.Profile()
        profiler.enable()
        run()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print(f"\n== {name}: top {top} by own time (cProfile inflates call-heavy code)")
        print("\n".join(line for line in lines[start:] if line.strip()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cprofile", action="store_true", help="also cProfile each figure")
    parser.add_argument("--top", type=int, default=12, help="rows per cProfile table")
    args = parser.parse_args(argv)

    print(f"ns per message (median of {REPEATS} runs of {N})")
    rows: list[tuple[str, Callable[[], Awaitable[float]]]] = [
        ("empty for loop (floor)", loop_floor),
        ("post_message(int), nobody receiving", ours_post),
        ("  raw send_nowait(int)", raw_post),
        ("checkpoint_if_cancelled + cancel_shielded_checkpoint", checkpoint_pair),
        ("await port.receive() on a full queue, + .data", ours_receive_ready),
        ("  raw await receive() on a full channel", raw_receive_ready),
        ("async for on a full port (figure 1's consumer)", ours_async_for_ready),
        ("  raw async for on a full channel", raw_async_for_ready),
        ("MessageEvent('message', data=, ports=, target=)", message_event),
        ("onmessage dispatcher draining a full queue", dispatcher_drain),
        ("  the handler alone, called directly", handler_alone),
    ]
    for label, fn in rows:
        print(f"{_median_ns(_in_trio(fn), N):9.1f}  {label}")
    print("\nns per clone")
    for label, ns in clone_breakdown():
        print(f"{ns:9.1f}  {label}")
    if args.cprofile:
        cprofile_figures(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
