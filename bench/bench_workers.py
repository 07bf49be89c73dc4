"""Benchmark: process actors (``spawn(..., process=True)``) against raw trio processes.

    .venv/bin/python bench/bench_workers.py            # full run (9 repeats per figure)
    .venv/bin/python bench/bench_workers.py --quick    # smoke run (3 short repeats)
    .venv/bin/python bench/bench_workers.py --profile  # where the time goes (no figures)

Same method as ``bench_ports.py``: every figure is measured against its baseline in the same
run, with repeats interleaved (ours, baseline, baseline, ours, ...); each figure is the median
of its repeats and each ratio is the ratio of the medians. Here the whole benchmark is one
``trio.run`` (process actors live in a supervisor), with the clock read inside it.

The processes: the process actors of ``_worker_actors.py``, started once (``serve``, which
speaks ``_raw_peer.py``'s protocol over a port, and its variants ``serve_drain`` and
``serve_handler``; for figure 3, ``drive`` in worker A and ``serve_drain`` in worker B,
holding the two ends of one channel made here), and the raw peer, a
trio process that speaks length-prefixed msgpack frames (msgspec) over an ``AF_UNIX``
socketpair and imports nothing of ``actors``. Every process is reaped before the script exits
(it checks that it has no child left).

Figures:

1. Ping-pong, per round trip: ``port.post_message(i)`` then ``await port.receive()``, the
   worker posting ``i`` back; 1a the same with ``await actors.ask(port, i)`` (a reply port
   travels with each request: a new channel per call, reported for reference). Baseline: the
   raw pair, the parent sending one frame (msgpack of ``i``) and reading the one that comes
   back. Target (figure 1): <= 1.3x.
2. One-way throughput, parent -> worker: ``"count"``, then N ints by ``post_message`` with a
   checkpoint after each batch, then ``None``; the clock stops when the worker's count comes
   back. The worker reads as the raw peer does, a burst per checkpoint: ``await receive()``,
   then ``receive_nowait()`` until ``trio.WouldBlock`` (``serve_drain``). 2a: the worker's
   ``async for`` (a checkpoint per message); 2h: its ``onmessage`` handler; 2s: the parent's
   ``await send()``. Baseline: the raw pair, the same N frames encoded one by one and written
   a batch per ``send``, read a ``recv`` at a time. Target: ours >= 0.3x the raw throughput.
3. Worker A <-> worker B over the ports of one channel made in the parent and given one to
   each at spawn (frames go A -> parent -> B: the nodes form a tree). Timed inside A, B
   reading as in 2. The same two shapes as 1 and 2, reported against the raw pair of this
   run.
4. A 64 MiB ``ArrayBuffer`` parent -> worker -> parent, transferred both ways. Baseline: its
   bytes sent through the raw pair and back (``recv_into`` a buffer allocated once). Target:
   ours >= 5x faster (a buffer of 1 MiB or more crosses as a memfd: its fd is passed, its
   bytes are not copied).
5. Start: ``spawn(serve, port, process=True)`` until the reply to the first message has
   arrived. Baseline: ``python -c "import trio"`` started and waited for. Target: <= 1.5x.
   5m: the memory of the idle worker (RSS and PSS from ``/proc/PID/smaps_rollup``) against
   the idle raw peer (a trio + msgspec process).

``--profile`` prints, instead: the layers of one message timed one by one (clone, codec,
frames, node, link), cProfile of the parent and of the worker over ping-pong and over a
flood, and the start of a child broken down (interpreter, imports, hello).
"""

from __future__ import annotations

import compileall
import contextlib
import gc
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import trio
from _harness import Row, Series, noise, run_main  # this script's folder
from _worker_actors import drive, serve, serve_drain, serve_handler

import actors
from actors import ArrayBuffer, MessageChannel, MessagePort, Restart, Supervisor

perf_counter = time.perf_counter
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MIB = 1 << 20
BIG = 64 * MIB
PING_TARGET = 1.3
FLOOD_TARGET = 0.3
BIG_TARGET = 5.0
START_TARGET = 1.5


@dataclass(frozen=True)
class Config:
    repeats: int
    rounds: int  # ping-pong round trips per repeat
    messages: int  # one-way messages per repeat
    batch: int  # messages between checkpoints (ours) / per send (raw)
    big_rounds: int  # 64 MiB round trips per repeat


FULL = Config(repeats=9, rounds=2_000, messages=50_000, batch=1_000, big_rounds=3)
QUICK = Config(repeats=3, rounds=300, messages=5_000, batch=1_000, big_rounds=1)


# -- the raw pair -----------------------------------------------------------------------------

LENGTH = struct.Struct("<I")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


def _frame(value: object) -> bytes:
    payload = _encode(value)
    return LENGTH.pack(len(payload)) + payload


class RawPeer:
    """The parent's side of the raw baseline: ``_raw_peer.py`` in a child, over a socketpair."""

    def __init__(self, sock: socket.socket, process: trio.Process) -> None:
        self.sock = trio.socket.from_stdlib_socket(sock)
        self.process = process
        self.buffer = bytearray()

    @classmethod
    async def start(cls) -> RawPeer:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with theirs:
            process = await trio.lowlevel.open_process(
                [sys.executable, str(HERE / "_raw_peer.py"), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        return cls(ours, process)

    async def stop(self) -> None:
        """Close the socket (the peer returns) and reap the process."""
        self.sock.close()
        with trio.CancelScope(shield=True):
            with trio.move_on_after(10):
                await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()

    async def send_all(self, data: bytes | memoryview) -> None:
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                sent += await self.sock.send(view[sent:])

    async def receive(self) -> object:
        """The next frame's value."""
        buffer = self.buffer
        while True:
            if len(buffer) >= 4:
                (length,) = LENGTH.unpack_from(buffer)
                if len(buffer) >= 4 + length:
                    value = _decode(bytes(buffer[4 : 4 + length]))
                    del buffer[: 4 + length]
                    return value
            data = await self.sock.recv(256 * 1024)
            if not data:
                raise EOFError
            buffer += data

    async def receive_into(self, view: memoryview) -> None:
        got = 0
        while got < len(view):
            n = await self.sock.recv_into(view[got:])
            if not n:
                raise EOFError
            got += n


# -- the sides of each figure (seconds per round trip, per message, per start) --------------


async def ours_ping(port: MessagePort, n: int) -> float:
    t0 = perf_counter()
    for i in range(n):
        port.post_message(i)
        await port.receive()
    return (perf_counter() - t0) / n


async def ours_ask(port: MessagePort, n: int) -> float:
    t0 = perf_counter()
    for i in range(n):
        await actors.ask(port, i)
    return (perf_counter() - t0) / n


async def raw_ping(raw: RawPeer, n: int) -> float:
    t0 = perf_counter()
    for i in range(n):
        await raw.send_all(_frame(i))
        await raw.receive()
    return (perf_counter() - t0) / n


async def ours_flood(port: MessagePort, n: int, batch: int) -> float:
    t0 = perf_counter()
    port.post_message("count")
    for i in range(n):
        port.post_message(i)
        if i % batch == batch - 1:
            await trio.lowlevel.checkpoint()
    port.post_message(None)
    got = (await port.receive()).data
    elapsed = perf_counter() - t0
    assert got == n, got
    return elapsed / n


async def ours_flood_send(port: MessagePort, n: int, batch: int) -> float:
    """The same with ``await port.send(i)`` (flow control: waits while the window is full)."""
    t0 = perf_counter()
    await port.send("count")
    for i in range(n):
        await port.send(i)
    await port.send(None)
    got = (await port.receive()).data
    elapsed = perf_counter() - t0
    assert got == n, got
    return elapsed / n


async def raw_flood(raw: RawPeer, n: int, batch: int) -> float:
    t0 = perf_counter()
    await raw.send_all(_frame("count"))
    for start in range(0, n, batch):
        await raw.send_all(b"".join([_frame(i) for i in range(start, min(n, start + batch))]))
    await raw.send_all(_frame(None))
    got = await raw.receive()
    elapsed = perf_counter() - t0
    assert got == n, got
    return elapsed / n


async def ab(control: MessagePort, what: str, n: int, batch: int) -> float:
    """Figure 3: worker A does it with worker B and says how long it took."""
    seconds: float = await actors.ask(control, (what, n, batch))
    return seconds / n


def _touched(size: int) -> ArrayBuffer:
    buf = ArrayBuffer(size)
    with buf.view() as view:
        view[::4096] = b"x" * len(range(0, size, 4096))  # its pages exist before the clock
    return buf


async def ours_big(port: MessagePort, rounds: int, box: list[ArrayBuffer]) -> float:
    buf = box.pop()
    t0 = perf_counter()
    for _ in range(rounds):
        port.post_message(buf, transfer=[buf])
        buf = (await port.receive()).data
    elapsed = perf_counter() - t0
    assert type(buf) is ArrayBuffer
    assert buf.byte_length == BIG
    box.append(buf)
    return elapsed / rounds


async def raw_big(raw: RawPeer, rounds: int, data: bytearray, back: bytearray) -> float:
    header = _frame(["bytes", len(data)])
    t0 = perf_counter()
    with memoryview(data) as out, memoryview(back) as into:
        for _ in range(rounds):
            await raw.send_all(header)
            await raw.send_all(out)
            await raw.receive_into(into)
    return (perf_counter() - t0) / rounds


async def ours_start(sup: Supervisor) -> float:
    channel = MessageChannel()
    t0 = perf_counter()
    handle = sup.spawn(
        serve, channel.port2, name="started", process=True, restart=Restart.TRANSIENT
    )
    channel.port1.post_message(1)
    await channel.port1.receive()
    elapsed = perf_counter() - t0
    channel.port1.close()  # serve returns; TRANSIENT: stopped for good, its process reaped
    await handle.wait()
    return elapsed


async def bare_start() -> float:
    t0 = perf_counter()
    process = await trio.lowlevel.open_process([sys.executable, "-c", "import trio"])
    await process.wait()
    return perf_counter() - t0


# -- memory ---------------------------------------------------------------------------------


def memory_of(pid: int) -> dict[str, int]:
    """RSS, PSS (and USS: private clean + dirty) of a process, in bytes, from smaps_rollup."""
    fields: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        text = Path(f"/proc/{pid}/status").read_text().replace("VmRSS", "Rss")
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[key.strip()] = int(parts[0]) * 1024
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0), "uss": uss}


def children_left() -> list[int]:
    """This process's children now (a zombie is still one)."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # the thread is gone
            pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


# -- running ----------------------------------------------------------------------------------


async def interleave_async(
    repeats: int, sides: Sequence[tuple[Series, Callable[[], Awaitable[float]]]]
) -> None:
    """``_harness.interleave`` for sides that run in the current trio run."""
    for _, run in sides:  # warm-up, not recorded
        gc.collect()
        await run()
    for r in range(repeats):
        order = sides if r % 2 == 0 else list(reversed(sides))
        for series, run in order:
            gc.collect()
            series.samples.append(await run())


def _us(s: Series) -> str:
    return f"{s.median * 1e6:.1f} µs"


def _rate(s: Series) -> str:
    return f"{1 / s.median / 1e3:.1f}k msg/s"


def _time_row(name: str, ours: Series, base: Series, label: str, target: float | None) -> Row:
    ratio = ours.median / base.median
    return Row(
        name,
        _us(ours),
        f"{_us(base)} {label}",
        ratio,
        "(reference)" if target is None else f"<= {target}",
        None if target is None else ratio <= target,
        noise(ours, base),
    )


def _rate_row(name: str, ours: Series, base: Series, target: float | None) -> Row:
    ratio = base.median / ours.median  # ours/raw throughput
    return Row(
        name,
        _rate(ours),
        f"{_rate(base)} raw",
        ratio,
        "(reference)" if target is None else f">= {target}",
        None if target is None else ratio >= target,
        noise(ours, base),
    )


@dataclass
class World:
    """What the figures use: the supervisor, the ports to the workers, the raw peer."""

    sup: Supervisor
    port: MessagePort  # to `serve` in "worker"
    drain_port: MessagePort  # to `serve_drain` in "drain"
    handler_port: MessagePort  # to `serve_handler` in "handler"
    control: MessagePort  # to `drive` in "a", which holds a port to `serve_drain` in "b"
    raw: RawPeer


async def run_all(config: Config) -> list[Row]:
    raw = await RawPeer.start()
    try:
        async with actors.open_supervisor(name="bench") as sup:
            world = World(sup, *_spawn_workers(sup), raw)
            try:
                world.port.post_message(0)  # the worker has started and answered once
                await world.port.receive()
                idle = _memory_row(sup, raw)  # before any figure has made it grow
                rows = [
                    *await figure_ping(config, world),
                    *await figure_flood(config, world),
                    *await figure_ab(config, world),
                    await figure_big(config, world),
                    await figure_start(config, world),
                    idle,
                ]
            finally:  # each worker's port closes, so it returns (A's return closes B's)
                for port in (world.port, world.drain_port, world.handler_port, world.control):
                    port.close()
    finally:
        await raw.stop()
    left = children_left()
    assert not left, f"child processes left: {left}"
    return rows


def _spawn_workers(
    sup: Supervisor,
) -> tuple[MessagePort, MessagePort, MessagePort, MessagePort]:
    once = Restart.TRANSIENT  # a return ends it for good
    to_worker, to_drain, to_handler, pair, control = (MessageChannel() for _ in range(5))
    sup.spawn(serve, to_worker.port2, name="worker", process=True, restart=once)
    sup.spawn(serve_drain, to_drain.port2, name="drain", process=True, restart=once)
    sup.spawn(serve_handler, to_handler.port2, name="handler", process=True, restart=once)
    sup.spawn(drive, pair.port1, control.port2, name="a", process=True, restart=once)
    sup.spawn(serve_drain, pair.port2, name="b", process=True, restart=once)
    return to_worker.port1, to_drain.port1, to_handler.port1, control.port1


async def figure_ping(config: Config, w: World) -> list[Row]:
    reps, n = config.repeats, config.rounds
    print(f"1: ping-pong, {n} round trips per run, {reps} repeats")
    ping, ask, base = Series("ping"), Series("ask"), Series("raw ping")
    await interleave_async(
        reps,
        [
            (ping, lambda: ours_ping(w.port, n)),
            (ask, lambda: ours_ask(w.port, n)),
            (base, lambda: raw_ping(w.raw, n)),
        ],
    )
    return [
        _time_row("1 ping-pong post_message", ping, base, "raw", PING_TARGET),
        _time_row("1a ping-pong ask()", ask, base, "raw", None),
    ]


async def figure_flood(config: Config, w: World) -> list[Row]:
    reps, m, batch = config.repeats, config.messages, config.batch
    print(f"2: one-way, {m} messages per run, a checkpoint (raw: a send) per {batch}")
    flood, handled, sent = Series("flood"), Series("flood, handler"), Series("send")
    drained, base = Series("flood, drained"), Series("raw flood")
    await interleave_async(
        reps,
        [
            (drained, lambda: ours_flood(w.drain_port, m, batch)),
            (flood, lambda: ours_flood(w.port, m, batch)),
            (handled, lambda: ours_flood(w.handler_port, m, batch)),
            (sent, lambda: ours_flood_send(w.port, m, batch)),
            (base, lambda: raw_flood(w.raw, m, batch)),
        ],
    )
    return [
        _rate_row("2 one-way, worker drains", drained, base, FLOOD_TARGET),
        _rate_row("2a the same, worker async for", flood, base, None),
        _rate_row("2h the same, worker onmessage", handled, base, None),
        _rate_row("2s the same, await send()", sent, base, None),
    ]


async def figure_ab(config: Config, w: World) -> list[Row]:
    reps, n, m, batch = config.repeats, config.rounds, config.messages, config.batch
    print("3: worker A <-> worker B (timed in A), against the raw pair")
    ping, flood = Series("A<->B ping"), Series("A->B flood")
    raw_ping_, raw_flood_ = Series("raw ping"), Series("raw flood")
    await interleave_async(
        reps,
        [
            (ping, lambda: ab(w.control, "ping", n, batch)),
            (raw_ping_, lambda: raw_ping(w.raw, n)),
            (flood, lambda: ab(w.control, "flood", m, batch)),
            (raw_flood_, lambda: raw_flood(w.raw, m, batch)),
        ],
    )
    return [
        _time_row("3 A <-> B ping-pong", ping, raw_ping_, "raw", None),
        _rate_row("3f A -> B one-way", flood, raw_flood_, None),
    ]


async def figure_big(config: Config, w: World) -> Row:
    reps, rounds = config.repeats, config.big_rounds
    print(f"4: 64 MiB round trip, {rounds} per run")
    box = [_touched(BIG)]
    data, back = bytearray(b"x" * BIG), bytearray(BIG)
    ours, base = Series("64 MiB"), Series("64 MiB raw")
    await interleave_async(
        reps,
        [
            (ours, lambda: ours_big(w.port, rounds, box)),
            (base, lambda: raw_big(w.raw, rounds, data, back)),
        ],
    )
    speedup = base.median / ours.median
    return Row(
        "4 64 MiB round trip",
        f"{ours.median * 1e3:.1f} ms",
        f"{base.median * 1e3:.1f} ms raw bytes",
        speedup,
        f">= {BIG_TARGET} (faster)",
        speedup >= BIG_TARGET,
        noise(ours, base),
    )


async def figure_start(config: Config, w: World) -> Row:
    print("5: start a process actor until its first reply, against python -c 'import trio'")
    ours, bare = Series("start"), Series("bare")
    await interleave_async(config.repeats, [(ours, lambda: ours_start(w.sup)), (bare, bare_start)])
    ratio = ours.median / bare.median
    return Row(
        "5 start to first reply",
        f"{ours.median * 1e3:.1f} ms",
        f"{bare.median * 1e3:.1f} ms bare",
        ratio,
        f"<= {START_TARGET}",
        ratio <= START_TARGET,
        noise(ours, bare),
    )


def _memory_row(sup: Supervisor, raw: RawPeer) -> Row:
    worker = next(c for c in sup.children if c.name == "worker")
    assert worker.pid is not None
    ours, base = memory_of(worker.pid), memory_of(raw.process.pid)
    return Row(
        "5m idle worker RSS / PSS / USS",
        " / ".join(f"{ours[k] / MIB:.1f}" for k in ("rss", "pss", "uss")) + " MiB",
        " / ".join(f"{base[k] / MIB:.1f}" for k in ("rss", "pss", "uss")) + " MiB raw",
        ours["pss"] / base["pss"] if base["pss"] else None,
        "(measured)",
        None,
        "",
    )


FOOTNOTE = (
    "ratio: ours/raw for times (1, 3, 5, 5m: PSS), ours/raw throughput (2, 3f),\n"
    "raw/ours time for 4 (how many times faster). noise: half the (max - min) / median of the\n"
    "repeats, ours/baseline. 5m's baseline: the idle raw peer (trio + msgspec, no actors)."
)


def compile_bytecode(args: object) -> None:
    """Compile ``actors/`` and this folder to bytecode (``__pycache__``), as installing them
    would: otherwise, where ``PYTHONDONTWRITEBYTECODE`` is set, every child compiles them
    again (about 50 ms of each start here), which no installed program pays."""
    for folder in (ROOT / "actors", HERE):
        compileall.compile_dir(folder, quiet=1)
    if sys.flags.dont_write_bytecode:
        print("PYTHONDONTWRITEBYTECODE is set: actors/ and bench/ were compiled to bytecode first")


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(
        __doc__,
        argv,
        full=FULL,
        quick=QUICK,
        run=lambda config, _: trio.run(run_all, config),
        footnote=lambda _: FOOTNOTE,
        no_node_help="ignored (bench_ports.py's; dev.py passes it on)",
        verdicts="the raw baseline",
        preamble=compile_bytecode,
    )


if __name__ == "__main__":
    sys.exit(main())
