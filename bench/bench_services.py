"""Benchmarks: calls through wrap() against a raw ask and raw trio, and connect by name.

    .venv/bin/python bench/bench_services.py           # full run (9 repeats per figure)
    .venv/bin/python bench/bench_services.py --quick   # smoke run (3 short repeats)
    .venv/bin/python bench/bench_services.py --profile # where a call's time goes

Same method as the other scripts (``_harness.py``): every figure against its baseline in the
same process, repeats interleaved (ABBA), medians of the repeats, the ratio of the medians.

Figures:

1. a call through ``wrap``: ``await kv.get(i)`` on a proxy whose port's peer is served by
   ``expose`` (one call at a time, the default), in a task of the same run. Baseline: a raw
   ``await actors.ask(port, i)`` to a task answering ``event.reply(event.data)`` on the same
   kind of port, in the same run. Target: <= 1.3x. For reference, the same against a raw
   request/reply over two trio memory channels (``bench_actors.py`` figure 2's baseline), and
   a call to an exposed ``async`` method (which is watched for its caller leaving).
2. connect by name: ``await actors.connect("svc")`` plus the first round trip on the new port,
   to a ``serve`` block whose loop answers each client in a task of its own. Baseline: a fresh
   ``MessageChannel`` whose end is posted on a port the server reads (the hand-written "door"
   a service needed before), plus the same first round trip. For reference, ``connect`` alone.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import trio
from _harness import (  # this script's folder
    Row,
    Series,
    interleave,
    noise,
    report_profile,
    run_main,
    trio_runner,
)

import actors

_now = time.perf_counter

CALL_TARGET = 1.3
"""A call through wrap(): within 1.3x a raw ask."""


@dataclass(frozen=True)
class Config:
    repeats: int
    calls: int
    connects: int


FULL = Config(repeats=9, calls=20_000, connects=5_000)
QUICK = Config(repeats=3, calls=2_000, connects=500)


class Store:
    def __init__(self) -> None:
        self.data = {i: i for i in range(64)}

    def get(self, key: int) -> int:
        return self.data.get(key % 64, 0)

    async def aget(self, key: int) -> int:
        return self.data.get(key % 64, 0)


# -- 1. calls -----------------------------------------------------------------------------


async def wrap_calls(calls: int, method: str = "get") -> float:
    channel = actors.MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.expose, Store(), channel.port2)
        call = getattr(actors.wrap(channel.port1), method)
        start = _now()
        for i in range(calls):
            await call(i)
        elapsed = _now() - start
        channel.port1.close()
    return elapsed


async def wrap_async_calls(calls: int) -> float:
    return await wrap_calls(calls, "aget")


async def raw_asks(calls: int) -> float:
    channel = actors.MessageChannel()
    store = Store()

    async def replier(port: actors.MessagePort) -> None:
        async for event in port:
            event.reply(store.get(event.data))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(replier, channel.port2)
        ask, port = actors.ask, channel.port1
        start = _now()
        for i in range(calls):
            await ask(port, i)
        elapsed = _now() - start
        port.close()
    return elapsed


async def raw_trio(calls: int) -> float:
    request_send, request_receive = trio.open_memory_channel[tuple[int, object]](math.inf)
    reply_send, reply_receive = trio.open_memory_channel[int](math.inf)
    store = Store()

    async def server() -> None:
        async for value, reply in request_receive:
            reply.send_nowait(store.get(value))  # type: ignore[attr-defined]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        start = _now()
        for i in range(calls):
            request_send.send_nowait((i, reply_send))
            await reply_receive.receive()
        elapsed = _now() - start
        request_send.close()
    reply_send.close()
    reply_receive.close()
    return elapsed


# -- 2. connect by name -------------------------------------------------------------------


async def answer(port: actors.MessagePort) -> None:
    async for event in port:
        event.reply(event.data)


async def connect_by_name(connects: int, first_call: bool = True) -> float:
    async with trio.open_nursery() as nursery:

        async def server(task_status: trio.TaskStatus[None]) -> None:
            async with actors.serve("svc") as incoming:
                task_status.started()
                async for port in incoming:
                    nursery.start_soon(answer, port)

        await nursery.start(server)
        ports = []
        start = _now()
        for i in range(connects):
            port = await actors.connect("svc")
            if first_call:
                await actors.ask(port, i)
            ports.append(port)
        elapsed = _now() - start
        for port in ports:
            port.close()
        nursery.cancel_scope.cancel()
    return elapsed


async def connect_alone(connects: int) -> float:
    return await connect_by_name(connects, first_call=False)


async def hand_written_door(connects: int) -> float:
    door = actors.MessageChannel()
    async with trio.open_nursery() as nursery:

        async def server() -> None:
            async for event in door.port2:
                nursery.start_soon(answer, event.ports[0])

        nursery.start_soon(server)
        ports = []
        start = _now()
        for i in range(connects):
            channel = actors.MessageChannel()
            door.port1.post_message(None, [channel.port2])
            await actors.ask(channel.port1, i)
            ports.append(channel.port1)
        elapsed = _now() - start
        for port in ports:
            port.close()
        nursery.cancel_scope.cancel()
    return elapsed


# -- running and reporting ----------------------------------------------------------------


def run_all(config: Config) -> list[Row]:
    calls, connects, repeats = config.calls, config.connects, config.repeats
    rows: list[Row] = []
    print(f"1: {calls} calls per run, {repeats} repeats")
    wrap_s, ask_s, trio_s, async_s = (
        Series("wrap"),
        Series("ask"),
        Series("trio"),
        Series("wrap async"),
    )
    interleave(
        repeats,
        [
            (wrap_s, trio_runner(wrap_calls, calls)),
            (ask_s, trio_runner(raw_asks, calls)),
            (trio_s, trio_runner(raw_trio, calls)),
            (async_s, trio_runner(wrap_async_calls, calls)),
        ],
    )
    us = {s.name: s.median / calls * 1e6 for s in (wrap_s, ask_s, trio_s, async_s)}
    rows.append(
        Row(
            "1 call through wrap",
            f"{us['wrap']:.2f} µs",
            f"{us['ask']:.2f} µs raw ask",
            us["wrap"] / us["ask"],
            f"<= {CALL_TARGET:.3f}",
            us["wrap"] / us["ask"] <= CALL_TARGET,
            noise(wrap_s, ask_s),
        )
    )
    rows.append(
        Row(
            "1t same, vs raw trio",
            f"{us['wrap']:.2f} µs",
            f"{us['trio']:.2f} µs memory channels",
            us["wrap"] / us["trio"],
            "(reference)",
            None,
            noise(wrap_s, trio_s),
        )
    )
    rows.append(
        Row(
            "1a call of an async method",
            f"{us['wrap async']:.2f} µs",
            f"{us['ask']:.2f} µs raw ask",
            us["wrap async"] / us["ask"],
            "(reference)",
            None,
            noise(async_s, ask_s),
        )
    )
    print(f"2: {connects} connects per run, {repeats} repeats")
    name_s, door_s, alone_s = Series("connect"), Series("door"), Series("connect alone")
    interleave(
        repeats,
        [
            (name_s, trio_runner(connect_by_name, connects)),
            (door_s, trio_runner(hand_written_door, connects)),
            (alone_s, trio_runner(connect_alone, connects)),
        ],
    )
    us_name = name_s.median / connects * 1e6
    us_door = door_s.median / connects * 1e6
    us_alone = alone_s.median / connects * 1e6
    rows.append(
        Row(
            "2 connect + first call",
            f"{us_name:.2f} µs",
            f"{us_door:.2f} µs hand-written door",
            us_name / us_door,
            "(reference)",
            None,
            noise(name_s, door_s),
        )
    )
    rows.append(
        Row(
            "2c connect alone",
            f"{us_alone:.2f} µs",
            "—",
            None,
            "(reference)",
            None,
            noise(alone_s),
        )
    )
    return rows


def profile(config: Config, top: int) -> None:
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    trio.run(wrap_calls, config.calls)
    profiler.disable()
    report_profile(f"{config.calls} calls through wrap", profiler, top)


FOOTNOTE = (
    "ratio: ours/baseline (time per call or per connection).\n"
    "noise: half the (max - min) / median of the repeats, ours/baseline."
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(
        __doc__,
        argv,
        full=FULL,
        quick=QUICK,
        run=lambda config, _: run_all(config),
        footnote=lambda _: FOOTNOTE,
        no_node_help="ignored (bench_ports.py's; dev.py passes it to every script)",
        verdicts="a raw ask",
        profile=profile,
    )


if __name__ == "__main__":
    sys.exit(main())
