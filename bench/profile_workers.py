"""Where the time goes in bench_workers.py's figures: the layers one by one, cProfile of both
processes, and a process actor's start broken down.

    .venv/bin/python bench/profile_workers.py              # layers and start breakdown
    .venv/bin/python bench/profile_workers.py --cprofile   # plus cProfile of parent and worker

Layers: two nodes of one trio run joined by links that only collect frames (no socket, no
task switch), so each step of a message is timed alone, in ns per message: the sender's side
(``post_message`` to a port whose peer is on another node, down to the frame a link would
write, and its parts), the receiver's (``Node.receive`` of those frames to the port's queue,
and its parts), and then what the reader of the port pays (``await receive()`` on a full
queue; an ``onmessage`` handler draining it). For scale: the same post in-process, the raw
baseline's encode/decode, and a socketpair send + recv of one frame. Each line is the median
of ``REPEATS`` runs. These steps use the transport's internals (``actors._wire``), so this
script follows them when they change.

Start: the time to start ``python -c pass``, ``-c "import trio"``, ``-c "import actors"``,
``-c "import actors._process.child, actors._supervisor, _worker_actors"`` (what a child
imports before its actor runs), against ``spawn(serve, port, process=True)`` until the
first reply; medians of ``START_REPEATS``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import bench_workers as bw  # this script's folder is first on sys.path
import msgspec
import trio
from _harness import report_profile
from _worker_actors import serve, serve_handler

import actors
from actors import MessageChannel, MessageEvent, Restart
from actors._wire import codec, frames
from actors._wire.memory import bridge
from actors._wire.node import Node

N = 20_000
REPEATS = 7
START_REPEATS = 7
perf_counter = time.perf_counter
SMALL = {"op": "add", "n": 1}
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
"""What a process actor's child gets (the parent's sys.path), so that it imports the same."""


def _median_ns(samples: list[float], per: int) -> float:
    return statistics.median(samples) / per * 1e9


def _repeat(run: Callable[[], float]) -> list[float]:
    samples = []
    for _ in range(REPEATS):
        gc.collect()
        samples.append(run())
    return samples


async def _arepeat(run: Callable[[], Awaitable[float]]) -> list[float]:
    samples = []
    for _ in range(REPEATS):
        gc.collect()
        samples.append(await run())
    return samples


# -- the layers -------------------------------------------------------------------------------


class Collect:
    """A link that keeps what it is given."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def send(self, frame: bytes, fds: object = None) -> None:
        self.out.append(frame)

    def close(self) -> None:
        pass


def _timed(fn: Callable[[], object], n: int = N) -> Callable[[], float]:
    def run() -> float:
        t0 = perf_counter()
        for _ in range(n):
            fn()
        return perf_counter() - t0

    return run


async def layers() -> list[tuple[str, float]]:
    a, b = Node(), Node()
    to_b, to_a = Collect(), Collect()
    a.add_link(b.name, to_b)
    b.add_link(a.name, to_a, parent=True)
    sender, receiver = bridge(a, b)
    out, back = sender._core.peer, receiver._core.peer  # their RemoteEnds
    assert out is not None
    assert back is not None
    rows: list[tuple[str, float]] = []

    def send(message: object) -> Callable[[], float]:
        def run() -> float:
            to_b.out.clear()
            out.send_seq, out.ack_asked, out.acked = 1, 0, 0  # type: ignore[union-attr]
            t0 = perf_counter()
            for _ in range(N):
                sender.post_message(message)
            return perf_counter() - t0

        return run

    rows.append(("post_message(int) to a remote end: frame out", _median_ns(_repeat(send(7)), N)))
    payload = codec.encode(7, [])[0]
    rows.append(
        ("  codec.encode(int)", _median_ns(_repeat(_timed(lambda: codec.encode(7, []))), N))
    )
    frame = frames.encode(b.name, a.name, frames.USER, 1 << 60, 1, 77, payload, [], False)
    rows.append(
        (
            "  frames.encode(USER ...)",
            _median_ns(
                _repeat(
                    _timed(
                        lambda: frames.encode(
                            b.name, a.name, frames.USER, 1 << 60, 1, 77, payload, [], False
                        )
                    )
                ),
                N,
            ),
        )
    )
    rows.append(
        ("  framed(frame) (the link)", _median_ns(_repeat(_timed(lambda: frames.framed(frame))), N))
    )
    rows.append(("post_message(small dict) to a remote end", _median_ns(_repeat(send(SMALL)), N)))
    rows.append(
        (
            "  clone(small dict) (post_message's)",
            _median_ns(_repeat(_timed(lambda: actors.structured_clone(SMALL))), N),
        )
    )
    rows.append(
        (
            "  codec.encode(small dict)",
            _median_ns(_repeat(_timed(lambda: codec.encode(SMALL, []))), N),
        )
    )

    sent = send(7)
    sent()
    ints = list(to_b.out)

    def receive() -> float:
        back.recv_seq, back.read, back.ack_due = 1, 0, 0  # type: ignore[union-attr]
        t0 = perf_counter()
        for f in ints:
            b.receive(f, a.name)
        elapsed = perf_counter() - t0
        assert receiver._core is not None
        assert len(receiver._core.queue) == N
        receiver._core.queue.clear()
        return elapsed

    rows.append(
        ("Node.receive(frame) of an int: into the port's queue", _median_ns(_repeat(receive), N))
    )
    rows.append(
        ("  frames.decode(frame)", _median_ns(_repeat(_timed(lambda: frames.decode(frame))), N))
    )
    rows.append(
        ("  codec.decode(int)", _median_ns(_repeat(_timed(lambda: codec.decode(payload, ()))), N))
    )
    stream = b"".join(frames.framed(f) for f in ints)

    def feed() -> float:
        reader = frames.Reader()
        t0 = perf_counter()
        for i in range(0, len(stream), 256 * 1024):  # as the link reads: 256 KiB at a time
            reader.feed(stream[i : i + 256 * 1024])
        return perf_counter() - t0

    rows.append(("Reader.feed, per frame (256 KiB reads)", _median_ns(_repeat(feed), N)))

    async def drain_receive() -> float:
        back.recv_seq, back.read, back.ack_due = 1, 0, 0  # type: ignore[union-attr]
        for f in ints:
            b.receive(f, a.name)
        t0 = perf_counter()
        for _ in range(N):
            await receiver.receive()
        return perf_counter() - t0

    rows.append(
        (
            "await receive() on a full queue, per message",
            _median_ns(await _arepeat(drain_receive), N),
        )
    )

    count = [0]
    done = trio.Event()

    def on_message(event: MessageEvent) -> None:
        count[0] += 1
        if count[0] == N:
            done.set()

    async def drain_handler() -> float:
        nonlocal done
        count[0] = 0
        done = trio.Event()
        back.recv_seq, back.read, back.ack_due = 1, 0, 0  # type: ignore[union-attr]
        receiver.onmessage = None
        for f in ints:
            b.receive(f, a.name)
        t0 = perf_counter()
        receiver.onmessage = on_message
        await done.wait()
        return perf_counter() - t0

    rows.append(
        (
            "onmessage dispatch of a full queue, per message",
            _median_ns(await _arepeat(drain_handler), N),
        )
    )
    receiver.onmessage = None
    sender.close()
    receiver.close()

    local = MessageChannel()

    def post_local() -> float:
        t0 = perf_counter()
        for _ in range(N):
            local.port1.post_message(7)
        elapsed = perf_counter() - t0
        assert local.port2._core is not None
        local.port2._core.queue.clear()
        return elapsed

    rows.append(("reference: post_message(int) in-process", _median_ns(_repeat(post_local), N)))
    local.port1.close()
    local.port2.close()
    encode, decode = msgspec.msgpack.Encoder().encode, msgspec.msgpack.Decoder().decode
    rows.append(
        (
            "reference: raw _frame(int) (msgspec + length)",
            _median_ns(_repeat(_timed(lambda: bw._frame(7))), N),
        )
    )
    rows.append(
        (
            "reference: raw msgspec decode(int)",
            _median_ns(_repeat(_timed(lambda: decode(encode(7)))), N),
        )
    )
    left, right = socket.socketpair()
    one = frames.framed(frame)

    def socket_round() -> None:
        left.send(one)
        right.recv(65536)

    rows.append(
        ("reference: socket send + recv of one frame", _median_ns(_repeat(_timed(socket_round)), N))
    )
    left.close()
    right.close()
    return rows


# -- the start of a child -----------------------------------------------------------------------


def _process_seconds(args: list[str]) -> float:
    t0 = perf_counter()
    subprocess.run([sys.executable, *args], check=True, env=CHILD_ENV)
    return perf_counter() - t0


async def start_breakdown() -> list[tuple[str, float]]:
    commands = [
        ("python -c pass", ["-c", "pass"]),
        ("python -c 'import trio' (the baseline)", ["-c", "import trio"]),
        ("python -c 'import actors'", ["-c", "import actors"]),
        (
            "python -c 'import actors._process.child, ..._supervisor, _worker_actors'",
            ["-c", "import actors._process.child, actors._supervisor, _worker_actors"],
        ),
    ]
    rows = []
    for label, args in commands:
        samples = [_process_seconds(args) for _ in range(START_REPEATS)]
        rows.append((label, statistics.median(samples) * 1e3))
    async with actors.open_supervisor(name="profile") as sup:
        samples = [await bw.ours_start(sup) for _ in range(START_REPEATS)]
    rows.append(
        ("spawn(serve, port, process=True) to its first reply", statistics.median(samples) * 1e3)
    )
    return rows


# -- cProfile of both sides --------------------------------------------------------------------


async def cprofile_both(top: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for shape, worker in [
            ("ping-pong", serve),
            ("one-way", serve),
            ("one-way, onmessage", serve_handler),
        ]:
            out = str(Path(tmp) / "worker.prof")
            channel = MessageChannel()
            async with actors.open_supervisor(name="profile") as sup:
                sup.spawn(worker, channel.port2, out, process=True, restart=Restart.TRANSIENT)
                port = channel.port1
                run: Callable[[], Awaitable[float]] = (
                    (lambda port=port: bw.ours_ping(port, 5_000))
                    if shape == "ping-pong"
                    else (lambda port=port: bw.ours_flood(port, 50_000, 1_000))
                )
                await run()  # warm-up
                profiler = cProfile.Profile()
                profiler.enable()
                await run()
                profiler.disable()
                port.close()
            report_profile(f"parent, {shape}", profiler, top)
            report_profile(f"worker, {shape} (its whole life: warm-up too)", out, top)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cprofile", action="store_true", help="also cProfile both processes")
    parser.add_argument("--top", type=int, default=15, help="rows per cProfile table")
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}, trio {trio.__version__}, actors {actors.__version__}")
    print(f"\n== layers, ns per message (median of {REPEATS} runs of {N:,})")
    for label, ns in trio.run(layers):
        print(f"{ns:10.0f}  {label}")
    print(f"\n== start, ms (median of {START_REPEATS})")
    for label, ms in trio.run(start_breakdown):
        print(f"{ms:10.1f}  {label}")
    if args.cprofile:
        trio.run(cprofile_both, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
