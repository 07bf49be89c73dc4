"""Benchmark: channels dropped without close() (the garbage collector closes them) against close().

    .venv/bin/python bench/bench_gc.py            # full run (7 repeats of 200,000 channels)
    .venv/bin/python bench/bench_gc.py --quick    # smoke run (3 repeats of 20,000)

Same method as ``bench_ports.py``: both sides in one process, repeats interleaved (ours,
baseline, baseline, ours, ...); each figure is the median of its repeats and the ratio is the
ratio of the medians. Every repeat is one ``trio.run`` with ``N`` fresh channels made before
the clock starts. The garbage collector stays on but runs a full collection before every
repeat.

Figure:

1. Dropped: the last references to ``N`` channels go at once (``channels.clear()``), so every
   port is collected while entangled and ``MessagePort.__del__`` hands its disentangling to the
   trio run; the clock stops once the run has done it all
   (``trio.testing.wait_all_tasks_blocked()``). Baseline: ``port1.close()`` and
   ``port2.close()`` on each channel, then the same ``clear()`` and wait.

What it shows: the cost of a collected port over a closed one. Each collected port used to
cost one ``run_sync_soon`` (a write to the run's wake-up socket); they are now handed over in
batches, one wake-up per batch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import trio
import trio.testing
from _harness import Row, Series, interleave, noise, run_main, trio_runner  # this script's folder

import actors

perf_counter = time.perf_counter


@dataclass(frozen=True)
class Config:
    repeats: int
    channels: int


FULL = Config(repeats=7, channels=200_000)
QUICK = Config(repeats=3, channels=20_000)


async def dropped(n: int) -> float:
    """Seconds to drop ``n`` channels and let the run disentangle every port."""
    channels = [actors.MessageChannel() for _ in range(n)]
    await trio.testing.wait_all_tasks_blocked()
    t0 = perf_counter()
    channels.clear()
    await trio.testing.wait_all_tasks_blocked()
    return perf_counter() - t0


async def closed(n: int) -> float:
    """Seconds to close both ports of ``n`` channels, then drop them."""
    channels = [actors.MessageChannel() for _ in range(n)]
    await trio.testing.wait_all_tasks_blocked()
    t0 = perf_counter()
    for channel in channels:
        channel.port1.close()
        channel.port2.close()
    channels.clear()
    await trio.testing.wait_all_tasks_blocked()
    return perf_counter() - t0


def run_all(config: Config) -> list[Row]:
    n = config.channels
    print(f"1: {n} channels per run, {config.repeats} repeats")
    ours, base = Series("dropped"), Series("closed")
    interleave(config.repeats, [(ours, trio_runner(dropped, n)), (base, trio_runner(closed, n))])
    return [
        Row(
            "1 drop vs close",
            f"{ours.median:.3f} s",
            f"{base.median:.3f} s close()",
            ours.median / base.median,
            "(reference)",
            None,
            noise(ours, base),
        )
    ]


def footnote(config: Config) -> str:
    return (
        f"times are for {config.channels} channels (both ports); ratio: dropped/closed time.\n"
        "noise: half the (max - min) / median of the repeats, ours/baseline."
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
    )


if __name__ == "__main__":
    sys.exit(main())
