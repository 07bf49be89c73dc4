"""Benchmark: a large ArrayBuffer to a child process and back, as a memfd against its bytes.

    .venv/bin/python bench/bench_buffers.py            # full run (9 repeats per figure)
    .venv/bin/python bench/bench_buffers.py --quick    # smoke run (3 short repeats)

Same method as ``bench_ports.py``: both sides in one process, repeats interleaved (ours,
baseline, baseline, ours, ...); each figure is the median of its repeats and the ratio is the
ratio of the medians. One child process (this script, run with ``--peer FD``, started with
``subprocess`` before any trio run) serves every figure over one ``AF_UNIX`` socketpair. Every
repeat is one ``trio.run`` that does a number of round trips with the clock read inside it.

Figures (a round trip: parent -> child -> parent):

1. 64 MiB. Ours: what the process transport will do with ``actors._wire.shm``: ``export``
   the buffer, ``send_frame`` its fd, close; the child ``receive_frame``\\ s, ``adopt``\\ s it
   and sends it back the same way; the parent adopts it. No byte of the buffer is touched.
   Baseline: the same 64 MiB sent through the same socket, each side receiving them with
   ``recv_into`` into a buffer it allocated once (the cheapest copy there is: two kernel
   copies each way, no allocation, no framing). Target: ours >= 5x faster.
2. The same, but the child reads one byte of every 4 KiB page of what it received, so that
   the memfd side pays for mapping the pages in the child, as a child that uses the buffer
   would. The copy side reads the same bytes.
3. 1 MiB, the threshold (``SHARED_MEMORY_THRESHOLD``): as 1.
4. 64 MiB through ports, as users move it: ``port.post_message(buf, [buf])`` to a process
   actor (``Supervisor.spawn(..., process=True)``, started once per repeat, before the clock)
   that posts it back the same way; the parent receives it. Baseline: figure 1's, its bytes
   raw through a socket. Target: ours >= 5x faster.
5. The same through ports, against the same through ports with the buffer's bytes in the
   frames (a buffer kept in a ``bytearray``, as every buffer was before the memfd path), for
   reference: what the fds save on the real path.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import trio
from _harness import Row, Series, interleave, noise, run_main  # this script's folder

import actors
from actors import ArrayBuffer, MessageChannel, MessagePort, Restart
from actors._buffers import SHARED_MEMORY_THRESHOLD
from actors._wire import shm

perf_counter = time.perf_counter
MIB = 1 << 20
PAGE = 4096
TARGET = 5.0


@dataclass(frozen=True)
class Config:
    repeats: int
    large_fd_rounds: int
    large_copy_rounds: int
    small_fd_rounds: int
    small_copy_rounds: int
    ports_fd_rounds: int
    ports_copy_rounds: int


FULL = Config(
    repeats=9,
    large_fd_rounds=200,
    large_copy_rounds=5,
    small_fd_rounds=500,
    small_copy_rounds=200,
    ports_fd_rounds=200,
    ports_copy_rounds=2,
)
QUICK = Config(
    repeats=3,
    large_fd_rounds=20,
    large_copy_rounds=2,
    small_fd_rounds=50,
    small_copy_rounds=20,
    ports_fd_rounds=20,
    ports_copy_rounds=1,
)


# -- the child ------------------------------------------------------------------------------


def _touch(view: memoryview) -> int:
    """Read one byte of every page."""
    return sum(view[::PAGE])


async def _peer(fd: int) -> None:
    """Serve requests until the parent closes the socket.

    ``fd <touch>`` (one fd, the length after it): adopt, touch if asked, send it back.
    ``copy <n> <touch>``: then n raw bytes follow; receive them, touch if asked, send them
    back raw.
    """
    sock = trio.socket.from_stdlib_socket(socket.socket(fileno=fd))
    buffers: dict[int, bytearray] = {}
    with sock:
        while True:
            try:
                payload, fds = await shm.receive_frame(sock)
            except trio.EndOfChannel:
                return
            op, length, touch = payload.decode().split()
            n = int(length)
            if op == "fd":
                buf = shm.adopt(fds[0], n)
                if touch == "1":
                    with buf.view() as view:
                        _touch(view)
                with shm.export(buf) as exported:  # type: ignore[union-attr]
                    await shm.send_frame(sock, b"back", [exported.fd])
            else:
                data = buffers.setdefault(n, bytearray(n))
                with memoryview(data) as view:
                    await _receive_into(sock, view)
                    if touch == "1":
                        _touch(view)
                    await _send_all(sock, view)


async def _receive_into(sock: trio.socket.SocketType, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = await sock.recv_into(view[got:])
        if not n:
            raise EOFError
        got += n


async def _send_all(sock: trio.socket.SocketType, view: memoryview) -> None:
    sent = 0
    while sent < len(view):
        sent += await sock.send(view[sent:])


# -- the parent -----------------------------------------------------------------------------


@dataclass
class Child:
    sock: socket.socket
    process: subprocess.Popen[bytes]


def start_child() -> Child:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with child:
        process = subprocess.Popen(
            [sys.executable, __file__, "--peer", str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
        )
    return Child(parent, process)


def stop_child(child: Child) -> None:
    child.sock.close()
    if child.process.wait(timeout=60) != 0:
        raise RuntimeError(f"the child exited with {child.process.returncode}")


async def fd_rounds(raw: socket.socket, size: int, rounds: int, touch: bool) -> float:
    """Seconds per round trip of a memfd buffer of ``size`` bytes."""
    sock = trio.socket.from_stdlib_socket(raw)
    buf = ArrayBuffer(size)
    with buf.view() as view:
        view[::PAGE] = b"x" * len(range(0, size, PAGE))  # its pages exist before the clock
    request = f"fd {size} {int(touch)}".encode()
    t0 = perf_counter()
    for _ in range(rounds):
        exported = shm.export(buf)
        assert exported is not None
        with exported:
            await shm.send_frame(sock, request, [exported.fd])
        _, fds = await shm.receive_frame(sock)
        buf = shm.adopt(fds[0], size)
    return (perf_counter() - t0) / rounds


async def copy_rounds(raw: socket.socket, size: int, rounds: int, touch: bool) -> float:
    """Seconds per round trip of ``size`` bytes through the socket."""
    sock = trio.socket.from_stdlib_socket(raw)
    data, back = bytearray(b"x" * size), bytearray(size)
    request = f"copy {size} {int(touch)}".encode()
    t0 = perf_counter()
    with memoryview(data) as out, memoryview(back) as into:
        for _ in range(rounds):
            await shm.send_frame(sock, request)
            await _send_all(sock, out)
            await _receive_into(sock, into)
    return (perf_counter() - t0) / rounds


async def echo(inbox: MessagePort) -> None:
    """The process actor of figures 4 and 5: every buffer back, transferred."""
    async for event in inbox:
        inbox.post_message(event.data, [event.data])


async def ports_rounds(size: int, rounds: int, inline: bool) -> float:
    """Seconds per round trip of a ``size``-byte buffer through ports to a process actor and
    back; ``inline``: a buffer kept in a bytearray, whose bytes go in the frames."""
    channel = MessageChannel()
    async with actors.open_supervisor() as sup:
        sup.spawn(echo, channel.port2, process=True, restart=Restart.TRANSIENT)
        port = channel.port1
        buf = ArrayBuffer._adopt(bytearray(size)) if inline else ArrayBuffer(size)
        with buf.view() as view:
            view[::PAGE] = b"x" * len(range(0, size, PAGE))  # its pages exist before the clock
        port.post_message(buf, [buf])  # the child is up, and the path warm
        buf = (await port.receive()).data
        t0 = perf_counter()
        for _ in range(rounds):
            port.post_message(buf, [buf])
            buf = (await port.receive()).data
        elapsed = perf_counter() - t0
        assert buf.byte_length == size
        port.close()
    return elapsed / rounds


def _ports_figures(config: Config, raw: socket.socket) -> list[Row]:
    size = 64 * MIB
    ours, raw_bytes, inline = Series("ports, fd"), Series("raw bytes"), Series("ports, bytes")
    print(
        f"4-5 through ports: 64 MiB, {config.ports_fd_rounds} / {config.large_copy_rounds} / "
        f"{config.ports_copy_rounds} round trips per run"
    )
    interleave(
        config.repeats,
        [
            (ours, lambda: trio.run(ports_rounds, size, config.ports_fd_rounds, False)),
            (raw_bytes, lambda: trio.run(copy_rounds, raw, size, config.large_copy_rounds, False)),
            (inline, lambda: trio.run(ports_rounds, size, config.ports_copy_rounds, True)),
        ],
    )
    versus_raw = raw_bytes.median / ours.median
    versus_inline = inline.median / ours.median
    return [
        Row(
            "4 64 MiB through ports",
            f"{ours.median * 1e3:.3f} ms",
            f"{raw_bytes.median * 1e3:.2f} ms bytes",
            versus_raw,
            f">= {TARGET:.1f}",
            versus_raw >= TARGET,
            noise(ours, raw_bytes),
        ),
        Row(
            "5 same, bytes in the frames",
            f"{ours.median * 1e3:.3f} ms",
            f"{inline.median * 1e3:.2f} ms ports",
            versus_inline,
            "(reference)",
            None,
            noise(ours, inline),
        ),
    ]


def _figure(
    config: Config, raw: socket.socket, name: str, size: int, touch: bool, fd_n: int, copy_n: int
) -> Row:
    ours, base = Series("memfd"), Series("bytes")
    print(f"{name}: {size // MIB} MiB, {fd_n} / {copy_n} round trips per run")
    interleave(
        config.repeats,
        [
            (ours, lambda: trio.run(fd_rounds, raw, size, fd_n, touch)),
            (base, lambda: trio.run(copy_rounds, raw, size, copy_n, touch)),
        ],
    )
    speedup = base.median / ours.median
    target = name.startswith("1 ")
    return Row(
        name,
        f"{ours.median * 1e3:.3f} ms",
        f"{base.median * 1e3:.2f} ms bytes",
        speedup,
        f">= {TARGET:.1f}" if target else "(reference)",
        speedup >= TARGET if target else None,
        noise(ours, base),
    )


def run_all(config: Config) -> list[Row]:
    child = start_child()
    try:
        raw = child.sock
        large, small = 64 * MIB, SHARED_MEMORY_THRESHOLD
        big_fd, big_copy = config.large_fd_rounds, config.large_copy_rounds
        return [
            _figure(config, raw, "1 64 MiB round trip", large, False, big_fd, big_copy),
            _figure(config, raw, "2 same, child reads it", large, True, big_fd, big_copy),
            _figure(
                config,
                raw,
                "3 1 MiB round trip",
                small,
                False,
                config.small_fd_rounds,
                config.small_copy_rounds,
            ),
            *_ports_figures(config, raw),
        ]
    finally:
        stop_child(child)


def footnote(config: Config) -> str:
    return (
        "times are per round trip (parent -> child -> parent); ratio: bytes/memfd time "
        "(how many times faster the memfd is).\n"
        "noise: half the (max - min) / median of the repeats, memfd/bytes."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["--peer"]:
        trio.run(_peer, int(args[1]))
        return 0
    return run_main(
        __doc__,
        argv,
        full=FULL,
        quick=QUICK,
        run=lambda config, _: run_all(config),
        footnote=footnote,
        no_node_help="ignored (bench_ports.py's; dev.py passes it on)",
        verdicts="faster than its bytes through the socket",
    )


if __name__ == "__main__":
    sys.exit(main())
