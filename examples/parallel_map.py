"""Parallel map: CPU-bound work fanned out to process actors, one per core, through ports.

Python runs one thread of Python code at a time per process, so pure-Python work gets faster
only in more processes. Here the work is counting the primes below ``LIMIT`` by trial
division, cut into chunks:

1. it is done once in this process, for the time to beat;
2. a supervisor spawns one ``counter`` actor per core with ``process=True``: each runs in a
   child Python process of its own, and the port it is given crosses into that process. The
   actor's code is what it would be in-process;
3. one feeder task per worker asks its worker for the next chunk each time it answered
   (``actors.ask``: the request and its reply port cross the process boundary), so a worker
   that gets cheap chunks simply gets more of them;
4. the counts are summed and checked against step 1, and the speed-up is printed (about
   ``workers``-fold at best: the time includes starting the processes, and the chunks must
   spread evenly enough over the workers);
5. closing the ports ends each ``async for``: the ``TRANSIENT`` workers return, their
   processes exit and are reaped, and the supervisor block exits.

Run it (after ``python3 dev.py setup``): ``.venv/bin/python examples/parallel_map.py``
(``--workers N --limit L`` to change the work).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import trio

import actors
from actors import MessageChannel, MessagePort, Restart

LIMIT = 1_500_000
CHUNKS_PER_WORKER = 8


def count_primes(lo: int, hi: int) -> int:
    """The primes in [lo, hi), by trial division: slow on purpose, pure Python."""
    count = 0
    for n in range(max(lo, 2), hi):
        if n % 2 == 0:
            count += n == 2
            continue
        for d in range(3, math.isqrt(n) + 1, 2):
            if n % d == 0:
                break
        else:
            count += 1
    return count


# --8<-- [start:worker]
async def counter(inbox: MessagePort) -> None:
    """Count the primes of each chunk asked for. Runs in a process of its own: a module-level
    function, so that the child can import it."""
    async for event in inbox:
        lo, hi = event.data
        event.reply(count_primes(lo, hi))
    # --8<-- [end:worker]


# --8<-- [start:main]
async def parallel(limit: int, workers: int) -> int:
    step = math.ceil(limit / (workers * CHUNKS_PER_WORKER))
    chunks = iter([(lo, min(lo + step, limit)) for lo in range(0, limit, step)])
    counts: list[int] = []

    async def feed(port: MessagePort) -> None:
        for chunk in chunks:  # one iterator for all feeders: each takes the next chunk
            counts.append(await actors.ask(port, chunk))

    async with actors.open_supervisor(name="parallel_map") as supervisor:
        ports = []
        for n in range(workers):
            channel = MessageChannel()  # port2 moves into the worker's process
            supervisor.spawn(
                counter, channel.port2, name=f"counter-{n}", process=True, restart=Restart.TRANSIENT
            )
            ports.append(channel.port1)
        async with trio.open_nursery() as nursery:
            for port in ports:
                nursery.start_soon(feed, port)
        for port in ports:
            port.close()  # each worker's `async for` ends: it returns and its process exits
    return sum(counts)


async def main(limit: int, workers: int) -> None:
    t0 = time.perf_counter()
    alone = count_primes(0, limit)
    t1 = time.perf_counter()
    print(f"in-process: {alone} primes below {limit:,} in {t1 - t0:.2f} s")

    together = await parallel(limit, workers)
    t2 = time.perf_counter()
    print(f"{workers} process actors: {together} primes in {t2 - t1:.2f} s (with their start)")
    speed_up = (t1 - t0) / (t2 - t1)
    print(f"speed-up: {speed_up:.2f}x on {os.cpu_count()} cores")
    if speed_up < 1:  # the cores were busy with other work, or the work was too small
        print("(slower: other programs may be using the cores; on an idle machine expect more)")
    assert together == alone
    print(f"parallel_map done: {workers} workers agree with the in-process count")
    # --8<-- [end:main]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Count primes in-process, then in parallel.")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--limit", type=int, default=LIMIT)
    args = parser.parse_args()
    trio.run(main, args.limit, args.workers)
