"""The process actors of ``bench_workers.py`` (a module of their own, so that a child imports
only this, not the benchmark script and its harness).

``serve`` speaks the protocol of ``_raw_peer.py`` over a port: ints come back, ``"count"``
counts the ints up to ``None``, an ``ArrayBuffer`` goes back transferred, and an ``ask`` is
answered. ``drive`` runs the A <-> B figures inside worker A and times them there.
"""

from __future__ import annotations

import cProfile
import time

import trio

from actors import ArrayBuffer, MessageEvent, MessagePort

perf_counter = time.perf_counter


async def serve(port: MessagePort, profile_to: str | None = None) -> None:
    """Answer on ``port`` until it closes (``profile_to``: write a cProfile of it there)."""
    profiler = None
    if profile_to is not None:
        profiler = cProfile.Profile()
        profiler.enable()
    counting = False
    count = 0
    async for event in port:
        data = event.data
        if counting:
            if data is None:
                port.post_message(count)
                counting = False
            else:
                count += 1
        elif type(data) is int:
            if event.ports:
                event.reply(data)
            else:
                port.post_message(data)
        elif data == "count":
            counting, count = True, 0
        elif type(data) is ArrayBuffer:
            port.post_message(data, transfer=[data])
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_to)


async def drive(peer: MessagePort, control: MessagePort) -> None:
    """Worker A: for each ``(what, n, batch)`` asked on ``control``, run it with the worker
    at ``peer``'s other end and answer with the seconds it took.

    ``ping``: n round trips (post, then receive the echo). ``flood``: n ints posted, with a
    checkpoint after each ``batch``, then ``None``; the time ends with the count coming back.
    """
    async for event in control:
        what, n, batch = event.data
        t0 = perf_counter()
        if what == "ping":
            for i in range(n):
                peer.post_message(i)
                await peer.receive()
        else:
            peer.post_message("count")
            for i in range(n):
                peer.post_message(i)
                if i % batch == batch - 1:
                    await trio.lowlevel.checkpoint()
            peer.post_message(None)
            got = (await peer.receive()).data
            assert got == n, got
        event.reply(perf_counter() - t0)


async def serve_handler(port: MessagePort, profile_to: str | None = None) -> None:
    """``serve`` with an ``onmessage`` handler instead of ``async for`` (no checkpoint per
    message: the port's dispatcher calls the handler for each message it finds queued)."""
    state = {"counting": False, "count": 0}
    closed = trio.Event()

    def on_message(event: MessageEvent) -> None:
        data = event.data
        if state["counting"]:
            if data is None:
                port.post_message(state["count"])
                state["counting"] = False
            else:
                state["count"] += 1
        elif type(data) is int:
            port.post_message(data)
        elif data == "count":
            state["counting"], state["count"] = True, 0

    profiler = None
    if profile_to is not None:
        profiler = cProfile.Profile()
        profiler.enable()
    port.onclose = lambda _: closed.set()
    port.onmessage = on_message
    await closed.wait()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_to)


async def serve_drain(port: MessagePort) -> None:
    """``serve`` reading as trio's channels allow: ``await receive()`` for the first message,
    then ``receive_nowait()`` for what else has arrived (one checkpoint per burst, not per
    message)."""
    counting = False
    count = 0
    while True:
        try:
            event = await port.receive()
        except trio.EndOfChannel:
            return
        while True:
            data = event.data
            if counting:
                if data is None:
                    port.post_message(count)
                    counting = False
                else:
                    count += 1
            elif type(data) is int:
                port.post_message(data)
            elif data == "count":
                counting, count = True, 0
            try:
                event = port.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
