"""Process actors for tests/test_process_receivers_fuzz.py (a child imports them by name)."""

from __future__ import annotations

import trio

from actors import MessagePort


async def echo_bursts(control: MessagePort, *ports: MessagePort) -> None:
    """Echo every message on each of `ports`, and on each port that comes in a message on
    `control`, until each is closed: what has queued behind the message it waited for is
    echoed with it, in a row (a burst the link batches)."""
    async with trio.open_nursery() as nursery:
        for port in ports:
            nursery.start_soon(_echo_bursts, port)
        async for event in control:
            for port in event.ports:
                nursery.start_soon(_echo_bursts, port)


async def _echo_bursts(port: MessagePort) -> None:
    while True:
        try:
            first = await port.receive()
        except trio.EndOfChannel:
            return
        burst = [first.data]
        while True:
            try:
                burst.append(port.receive_nowait().data)
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        for data in burst:
            port.post_message(data)
