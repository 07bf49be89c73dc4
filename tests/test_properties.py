"""Property tests: random interleavings never lose, duplicate or reorder a message.

A model runs random programs over a few channels: posts from either end, multi-hop transfers
of either end (or both at once) through a carrier channel while the other end keeps posting,
starts, closes, receive() drains, onmessage handlers set and unset (their dispatchers run
whenever the program lets tasks settle), and posts on stale (transferred) port objects. Then every
channel direction must have delivered exactly what was posted, in order, except that a port
that closes drops what was still queued at it (D2): then what it received is a prefix.
"""

from __future__ import annotations

import gc
from typing import Any

import trio
import trio.testing
from _helpers import close_ports
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import MessageChannel, MessagePort

CHANNELS = 3
End = tuple[int, int]  # (channel, side)

ends = st.tuples(st.integers(0, CHANNELS - 1), st.integers(0, 1))
# Posting is three times as likely as each other operation.
OPERATIONS = ["post"] * 3 + [
    *("stale_post", "transfer", "transfer_both", "land", "start", "drain", "close"),
    *("listen", "unlisten", "settle"),
]
ops = st.tuples(st.sampled_from(OPERATIONS), ends)


class Model:
    def __init__(self) -> None:
        channels = [MessageChannel() for _ in range(CHANNELS)]
        self.handle: dict[End, MessagePort | None] = {}
        for c, ch in enumerate(channels):
            self.handle[c, 0], self.handle[c, 1] = ch.port1, ch.port2
        self.carrier = MessageChannel()
        self.in_flight: list[End] = []
        self.stale: dict[End, list[MessagePort]] = {end: [] for end in self.handle}
        self.closed: set[End] = set()
        self.seq = 0
        self.posted: dict[End, list[int]] = {end: [] for end in self.handle}  # by sender
        self.received: dict[End, list[int]] = {end: [] for end in self.handle}  # by sender

    def live(self, end: End) -> MessagePort | None:
        return None if end in self.closed else self.handle[end]

    def post(self, end: End) -> None:
        port = self.live(end)
        if port is None:
            return
        self.seq += 1
        port.post_message(("msg", end, self.seq))
        peer = (end[0], 1 - end[1])
        if peer not in self.closed:
            self.posted[end].append(self.seq)

    def stale_post(self, end: End) -> None:
        for old in self.stale[end]:
            old.post_message(("stale", end, -1))

    def transfer(self, *moving: End) -> None:
        ports = [self.live(end) for end in moving]
        if any(p is None for p in ports):
            return
        self.carrier.port1.post_message(moving, transfer=ports)
        for end, port in zip(moving, ports, strict=True):
            assert port is not None
            self.stale[end].append(port)
            self.handle[end] = None
            self.in_flight.append(end)

    async def land(self) -> None:
        if not self.in_flight:
            return
        event = await self.carrier.port2.receive()
        for end, port in zip(event.data, event.ports, strict=True):
            self.in_flight.remove(end)
            self.handle[end] = port
            assert not port.statistics().started, "a received port starts disabled"

    def record(self, end: End, data: Any) -> None:
        kind, sender, seq = data
        assert kind == "msg", f"a post on a stale port arrived: {data}"
        assert sender == (end[0], 1 - end[1])
        self.received[sender].append(seq)

    async def drain(self, end: End) -> None:
        port = self.live(end)
        if port is None:
            return
        if port.onmessage is not None:
            await trio.testing.wait_all_tasks_blocked()  # its dispatcher drains it
            return
        while port.statistics().queued:
            self.record(end, (await port.receive()).data)

    def listen(self, end: End, on: bool) -> None:
        port = self.live(end)
        if port is not None:
            port.onmessage = (lambda event: self.record(end, event.data)) if on else None

    def close(self, end: End) -> None:
        port = self.live(end)
        if port is None:
            return
        port.close()
        self.closed.add(end)

    async def run(self, program: list[tuple[str, End]]) -> None:
        for op, end in program:
            if op == "post":
                self.post(end)
            elif op == "stale_post":
                self.stale_post(end)
            elif op == "transfer":
                self.transfer(end)
            elif op == "transfer_both":
                self.transfer((end[0], 0), (end[0], 1))
            elif op == "land":
                await self.land()
            elif op == "start":
                if (port := self.live(end)) is not None:
                    port.start()
            elif op == "drain":
                await self.drain(end)
            elif op == "close":
                self.close(end)
            elif op in ("listen", "unlisten"):
                self.listen(end, op == "listen")
            elif op == "settle":
                await trio.testing.wait_all_tasks_blocked()
        while self.in_flight:
            await self.land()
        for end in self.handle:
            self.listen(end, False)
            await self.drain(end)
        self.check()

    def close_all(self) -> None:
        """Close every end and the carrier, as a program should when it is done."""
        close_ports([port for port in self.handle.values() if port is not None], self.carrier)

    def check(self) -> None:
        for sender, posted in self.posted.items():
            receiver = (sender[0], 1 - sender[1])
            got = self.received[sender]
            assert got == sorted(set(got)), f"{sender}: duplicated or reordered: {got}"
            if receiver in self.closed:
                assert got == posted[: len(got)], f"{sender}: not a prefix: {got} / {posted}"
            else:
                assert got == posted, f"{sender}: lost messages: {got} != {posted}"


@settings(max_examples=400, deadline=None)
@given(program=st.lists(ops, max_size=60))
def test_random_interleavings_never_lose_duplicate_or_reorder(program: Any) -> None:
    """Posts, multi-hop transfers of either or both ends, starts and closes keep FIFO."""

    async def main() -> None:
        model = Model()
        await model.run(program)
        model.close_all()

    trio.run(main)
    gc.collect()


@settings(max_examples=100, deadline=None)
@given(program=st.lists(ops, max_size=40), split=st.integers(0, 40))
def test_closed_peer_ends_the_stream_after_its_messages(program: Any, split: int) -> None:
    """After a peer closes, its receiver gets every earlier message and then EndOfChannel."""

    async def main() -> None:
        model = Model()
        await model.run(program[:split])
        for c in range(CHANNELS):
            a, b = model.live((c, 0)), model.live((c, 1))
            if a is None or b is None:
                continue
            a.post_message(("msg", (c, 0), 10**9))
            a.close()
            events = [event.data async for event in b]
            assert events == [("msg", (c, 0), 10**9)]
        model.close_all()

    trio.run(main)
