"""Ordering fuzzer: async handlers, receive() tasks and transfers never reorder a channel.

Random programs run in one `trio.run` on an autojump clock, over two channels: posts from
either end; transfers of one end or of both through a carrier channel, over several hops,
while the other end keeps posting; async `onmessage` handlers that take a random number of
checkpoints and sleeps before they record a message (so their runs overlap everything else);
sync handlers; handlers removed while an async run may still be in progress, alone or to switch
to `receive()`; receiver tasks that call `receive()` (or `async for`) for a random count,
overlapping the handlers and the transfers; starts; closes; posts on stale (transferred) port
objects; and single checkpoints, settling (`wait_all_tasks_blocked`) and clock ticks at random
points. Then every end in flight lands, every handler is removed, the handler runs finish, the
receiver tasks still waiting are cancelled and what is left queued is received. Under Hypothesis
trio's scheduler is deterministic and seeded per example, so the task interleaving is part of
the example.

Every record goes to one log, in time order. Per channel direction, every message posted is
recorded exactly once and in post order, by whichever handler or `receive()` got it; an end
that closed drops what was still queued at it (D2), so what it recorded is a prefix. And
neither `receive()` nor a sync handler records a message while an async handler still holds
an earlier message of the same direction (item 5 of "Supervision you can trust").

The same holds the other way round: a `receive()` that has taken its message but not yet
returned it keeps a handler set meanwhile from handling a later message first (the mirror of
item 5, which this fuzzer found).

`ACTORS_FUZZ_EXAMPLES=3000` runs a long search (the default keeps the suite fast).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing
from hypothesis import event, given, settings
from hypothesis import strategies as st

from actors import MessageChannel, MessageEvent, MessagePort

CHANNELS = 2
EXAMPLES = int(os.environ.get("ACTORS_FUZZ_EXAMPLES", "400"))
End = tuple[int, int]  # (channel, side)
Op = tuple[str, End, int]  # (operation, end, argument)

# Operation: weight (tuned so that the default run finds item 5 on the old code). Shrinking
# prefers the operations listed first.
OPERATIONS = {
    **{"post": 6, "yield": 2, "settle": 1, "tick": 1},
    **{"listen_async": 4, "listen_sync": 1, "unlisten": 1, "switch": 4, "receive": 3},
    **{"start": 1, "close": 1, "transfer": 2, "transfer_both": 1, "land": 2, "stale_post": 1},
}
ENDS = [(c, side) for c in range(CHANNELS) for side in (0, 1)]
# The argument: how many to post, an async handler's delays, a receiver's count, a tick's length.
# One draw per operation (a tuple of three draws makes generation the bulk of the runtime).
KINDS = [op for op, weight in OPERATIONS.items() for _ in range(weight)]
ops = st.sampled_from([(op, end, arg) for op in KINDS for end in ENDS for arg in range(16)])


@st.composite
def programs(draw: st.DrawFn) -> list[Op]:
    """Up to 12 runs of up to 10 operations: a flat list would average about 5 operations."""
    runs = draw(st.lists(st.lists(ops, max_size=10), max_size=12))
    return [op for run in runs for op in run]


def peer(end: End) -> End:
    return (end[0], 1 - end[1])


class Model:
    """A random program's ports, and the log of who recorded which message when."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
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
        self.log: list[tuple[End, int, str]] = []  # (sender, seq, who recorded it)
        self.strays: list[tuple[End, str, object]] = []  # what no end should have got
        self.violations: list[tuple[End, str]] = []  # (sender, what went wrong)
        self.held: dict[End, set[int]] = {end: set() for end in self.handle}  # by handlers
        # An end's receiver task: "in receive()", or "overtaken" if a handler was set since.
        self.receiving: dict[End, str] = {}
        self.running = 0  # async handler runs not finished yet
        self.finished = trio.Event()  # set (and replaced) whenever one finishes
        self.hops: dict[End, int] = {end: 0 for end in self.handle}
        self.covered: set[str] = set()  # the overlaps this program made happen

    def live(self, end: End) -> MessagePort | None:
        return None if end in self.closed else self.handle[end]

    def record(self, end: End, data: Any, who: str) -> None:
        """Log that `who` at `end` got `data`; never raises (a handler's error is only logged)."""
        if not (isinstance(data, tuple) and data[0] == "msg" and data[1] == peer(end)):
            self.strays.append((end, who, data))
            return
        _, sender, seq = data
        if who != "async handler" and any(k < seq for k in self.held[sender]):
            held = sorted(self.held[sender])
            self.violations.append((sender, f"{who} recorded {seq} while a handler held {held}"))
        self.log.append((sender, seq, who))

    def post(self, end: End, count: int) -> None:
        port = self.live(end)
        if port is None:
            return
        for _ in range(count):
            self.seq += 1
            port.post_message(("msg", end, self.seq))
            if peer(end) not in self.closed:
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
            if self.held[peer(end)]:
                self.covered.add("a port moved while its async handler ran")
            self.hops[end] += 1
            if self.hops[end] > 1:
                self.covered.add("a port moved twice")
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

    def async_handler(self, end: End, arg: int) -> Callable[[MessageEvent], Awaitable[None]]:
        """A handler that records each message after `(arg + seq) % 4` checkpoints or sleeps."""

        async def handler(event: MessageEvent) -> None:
            data = event.data
            ok = isinstance(data, tuple) and data[0] == "msg" and data[1] in self.held
            sender, seq = (data[1], data[2]) if ok else (peer(end), 0)
            self.running += 1
            self.held[sender].add(seq)
            try:
                for step in range((arg + seq) % 4):
                    if (arg // 4 + step) % 2:
                        await trio.sleep(1)
                    else:
                        await trio.lowlevel.checkpoint()
                self.record(end, data, "async handler")
            finally:
                self.held[sender].discard(seq)
                self.running -= 1
                self.finished.set()
                self.finished = trio.Event()

        return handler

    def listen(self, end: End, op: str, arg: int) -> None:
        port = self.live(end)
        if port is None:
            return
        if op == "unlisten":
            if port.onmessage is not None and self.held[peer(end)]:
                self.covered.add("a handler removed while its async run went on")
            port.onmessage = None
            return
        if self.receiving.get(end) == "in receive()":
            self.receiving[end] = "overtaken"  # that receive() may already hold a message
        if op == "listen_async":
            port.onmessage = self.async_handler(end, arg)
        else:
            port.onmessage = lambda event: self.record(end, event.data, "sync handler")

    def receive(self, end: End, arg: int) -> None:
        port = self.live(end)
        if port is None or end in self.receiving:
            return
        self.receiving[end] = "starting"
        if self.held[peer(end)]:
            self.covered.add("a receiver started while an async handler ran")
        self.nursery.start_soon(self.receiver, end, port, None if arg % 6 == 5 else 1 + arg % 6)

    async def receiver(self, end: End, port: MessagePort, count: int | None) -> None:
        """Record `count` messages got by receive() (all of them by `async for` if None)."""

        def got(event: MessageEvent, who: str) -> None:
            if self.receiving[end] == "overtaken":
                self.covered.add("a receive() took a message before a handler was set")
            self.record(end, event.data, who)
            self.receiving[end] = "in receive()"  # the next call begins (async for) or none

        try:
            self.receiving[end] = "in receive()"
            if count is None:
                async for event in port:
                    got(event, "async for")
            else:
                for _ in range(count):
                    got(await port.receive(), "receive()")
        except (trio.BusyResourceError, trio.ClosedResourceError, trio.EndOfChannel):
            pass  # a handler was set, the port closed or moved, or the peer is gone
        finally:
            del self.receiving[end]

    async def run(self, program: list[Op]) -> None:
        for op, end, arg in program:
            if op == "post":
                self.post(end, 1 + arg % 3)
            elif op == "stale_post":
                self.stale_post(end)
            elif op == "transfer":
                self.transfer(end)
            elif op == "transfer_both":
                self.transfer((end[0], 0), (end[0], 1))
            elif op == "land":
                await self.land()
            elif op in ("listen_async", "listen_sync", "unlisten"):
                self.listen(end, op, arg)
            elif op == "switch":  # from a handler (maybe still running) to receive()
                self.listen(end, "unlisten", arg)
                self.receive(end, arg)
            elif op == "receive":
                self.receive(end, arg)
            elif op == "start":
                if (port := self.live(end)) is not None:
                    port.start()
            elif op == "close":
                if (port := self.live(end)) is not None:
                    port.close()
                    self.closed.add(end)
            elif op == "yield":
                await trio.lowlevel.checkpoint()
            elif op == "settle":
                await trio.testing.wait_all_tasks_blocked()
            elif op == "tick":
                await trio.sleep(1 + arg % 2)
        while self.in_flight:
            await self.land()
        for end in self.handle:
            self.listen(end, "unlisten", 0)
        while True:  # once every task is blocked, every dispatched handler run has begun
            await trio.testing.wait_all_tasks_blocked()
            if not self.running:
                break
            await self.finished.wait()

    async def drain(self) -> None:
        """receive() what is still queued at every end, now that no task competes for it."""
        for end in self.handle:
            port = self.live(end)
            while port is not None and port.statistics().queued:
                self.record(end, (await port.receive()).data, "final receive()")

    def check(self) -> None:
        assert not self.strays, f"messages no end should have got: {self.strays}"
        for sender, violation in self.violations:
            who = [(seq, by) for s, seq, by in self.log if s == sender]
            raise AssertionError(f"{sender}: {violation}; posted {self.posted[sender]}: {who}")
        for sender, posted in self.posted.items():
            who = [(seq, by) for s, seq, by in self.log if s == sender]
            got = [seq for seq, _ in who]
            expected = posted[: len(got)] if peer(sender) in self.closed else posted
            assert sorted(got) == expected, f"{sender}: lost or twice: posted {posted}, {who}"
            assert got == sorted(got), f"{sender}: out of order: posted {posted}, {who}"


async def fuzz(program: list[Op]) -> Model:
    async with trio.open_nursery() as nursery:
        model = Model(nursery)
        await model.run(program)
        nursery.cancel_scope.cancel()  # receivers still waiting give up (losing nothing)
    await model.drain()
    model.check()
    for port in (*model.handle.values(), model.carrier.port1, model.carrier.port2):
        if port is not None:
            port.close()  # nothing entangled is left for the garbage collector
    return model


@settings(max_examples=EXAMPLES, deadline=None)
@given(program=programs())
def test_handlers_receivers_and_transfers_keep_each_direction_in_order(program: list[Op]) -> None:
    """Async and sync handlers, receive() tasks and transfers record each message once, in order."""
    model = trio.run(fuzz, program, clock=trio.testing.MockClock(autojump_threshold=0))
    for overlap in sorted(model.covered):
        event(overlap)  # pytest --hypothesis-show-statistics lists how often each happened


def test_a_handler_set_while_receive_returns_a_message_comes_after_it() -> None:
    """A handler set while a blocked receive() is being handed message 1 handles 2 after it."""
    channel, trigger = MessageChannel(), MessageChannel()
    order: list[tuple[str, int]] = []

    async def receive_one() -> None:
        order.append(("receive()", (await channel.port2.receive()).data))

    def switch(event: MessageEvent) -> None:  # runs in the dispatcher, as an actor's handler
        channel.port1.post_message(1)  # handed to the blocked receive()
        channel.port2.onmessage = lambda event: order.append(("handler", event.data))
        channel.port1.post_message(2)

    async def main() -> None:
        trigger.port2.onmessage = switch
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_one)
            await trio.testing.wait_all_tasks_blocked()
            trigger.port1.post_message(None)
        await trio.testing.wait_all_tasks_blocked()  # the handler gets 2 once receive() is done
        for port in (channel.port1, channel.port2, trigger.port1, trigger.port2):
            port.close()

    trio.run(main)
    assert order == [("receive()", 1), ("handler", 2)]
