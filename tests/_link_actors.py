"""Process actors for tests/test_link_reading.py (a child imports them by name)."""

from __future__ import annotations

import os
import time

import trio

from actors import MessagePort


async def echo_each(*ports: MessagePort) -> None:
    """Echo every message on each of `ports`, until each is closed."""
    async with trio.open_nursery() as nursery:
        for port in ports:
            nursery.start_soon(_echo, port)


async def _echo(port: MessagePort) -> None:
    async for event in port:
        port.post_message(event.data, transfer=list(event.ports))


async def stalls_then_echoes(port: MessagePort, control: MessagePort, other: MessagePort) -> None:
    """Say it is up, then block its whole process for half a second (as CPU-bound code
    does: its link is not read meanwhile, so the socket to it fills), then echo."""
    control.post_message("up")
    time.sleep(0.5)  # noqa: ASYNC251 (the point: a process that does not run its loop)
    async for event in port:
        port.post_message(event.data)
    del other


async def holds(port: MessagePort, report: MessagePort) -> None:
    """Take a port from `port`, say it is ready, answer one message on the port it took,
    and wait to be killed."""
    event = await port.receive()
    [kept] = event.ports
    report.post_message(("ready", os.getpid()))
    await kept.receive()
    kept.post_message("kept")
    await trio.sleep_forever()
