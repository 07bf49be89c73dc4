"""Conformance: channels, entanglement, the port message queue, and trio's face of a port.

Covers /work/shared/spec/channel-messaging.md section A (rules 1-6), section J (rule 61), our
decisions D1 (what starts the queue), D4 (receive after a close) and D6 (send after a close),
plus the trio face: ``receive()``, ``async for``, ``send()``, ``aclose()``, ``statistics()``,
``BusyResourceError``, cancellation, and use from another thread.

Rules of the spec that this suite does not test, and why (one trio runtime has no windows,
documents, iframes or workers):

- Rule 14, the Worker part (events for a Worker's implicit port dispatched on the Worker).
- Rules 57-59: bfcache / fully-active documents, detached iframes, closing workers.
- Rule 48, the "owning document destroyed" trigger (and D5's "owner actor stops"): there are
  no documents, and actors are not built yet.
- Rule 22: Python has no SharedArrayBuffer.
- Rule 27, resizable buffers keeping ``maxByteLength``: ``ArrayBuffer`` is fixed-length.
- Rule 53, ``messageerror``: deserialization cannot fail inside one runtime (it needs a relay).
- Rules 51, 52 and 55 describe browser status, Node, and the absence of a guarantee: nothing to
  assert. Rules 62-70 (BroadcastChannel, PortCollection / D10) are not part of ports.
- Rule 7's options dictionary and rule 2's "MessageChannel without new" have no Python form.
"""

from __future__ import annotations

import gc
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from _helpers import blocked_receivers, close_ports, drops_entangled_ports

from actors import (
    ArrayBuffer,
    DataCloneError,
    Lagged,
    MessageChannel,
    MessageEvent,
    MessagePort,
    MessagePortStatistics,
    PortCollection,
    SlowMemberPolicy,
)
from actors._queue import MESSAGE_ERROR

# -- A. Construction and entanglement ---------------------------------------------------------


async def test_rule_1_channel_creates_two_new_ports() -> None:
    """Rule 1: MessageChannel() makes two distinct new MessagePorts."""
    first, second = MessageChannel(), MessageChannel()
    ports = [first.port1, first.port2, second.port1, second.port2]
    assert all(type(port) is MessagePort for port in ports)
    assert len({id(port) for port in ports}) == 4
    close_ports(first, second)


async def test_rule_1_getters_return_the_same_objects() -> None:
    """Rule 1: port1 and port2 return the same two objects on every access."""
    channel = MessageChannel()
    assert channel.port1 is channel.port1
    assert channel.port2 is channel.port2
    close_ports(channel)


async def test_rule_1_new_ports_are_entangled_with_each_other() -> None:
    """Rule 1: the two new ports are entangled: what one posts, the other receives."""
    channel = MessageChannel()
    assert channel.port1.statistics().entangled
    assert channel.port2.statistics().entangled
    channel.port1.post_message("hello")
    assert (await channel.port2.receive()).data == "hello"
    close_ports(channel)


async def test_rule_2_message_port_has_no_public_constructor() -> None:
    """Rule 2: MessagePort() raises TypeError; ports come only from channels and transfer."""
    with pytest.raises(TypeError):
        MessagePort()
    with pytest.raises(TypeError):
        MessagePort(None)


async def test_rule_3_entanglement_is_symmetric() -> None:
    """Rule 3: each port of a channel posts to the other one."""
    channel = MessageChannel()
    channel.port1.post_message("to port2")
    channel.port2.post_message("to port1")
    assert (await channel.port2.receive()).data == "to port2"
    assert (await channel.port1.receive()).data == "to port1"
    close_ports(channel)


async def test_rule_3_a_port_is_entangled_with_one_port_only() -> None:
    """Rule 3: a message reaches only the poster's partner, never a port of another channel."""
    first, second = MessageChannel(), MessageChannel()
    first.port1.post_message("for first.port2")
    await trio.testing.wait_all_tasks_blocked()
    assert [p.statistics().queued for p in (first.port2, second.port1, second.port2)] == [1, 0, 0]
    assert first.port1.statistics().queued == 0
    close_ports(first, second)


async def test_rule_4_channel_object_goes_stale_after_its_port_is_re_entangled() -> None:
    """Rule 4: after a transfer re-entangles port2's end, channel.port2 is the dead old object."""
    channel, carrier = MessageChannel(), MessageChannel()
    old = channel.port2
    carrier.port1.post_message(None, transfer=[old])
    moved = (await carrier.port2.receive()).ports[0]
    assert channel.port2 is old
    assert old.statistics().transferred
    assert not old.statistics().entangled
    channel.port1.post_message("reaches the new object")
    assert (await moved.receive()).data == "reaches the new object"
    close_ports(channel, carrier)


async def test_rule_5_queue_starts_empty_and_disabled() -> None:
    """Rule 5: a new port's queue is empty and not started."""
    channel = MessageChannel()
    stats = channel.port1.statistics()
    assert stats.queued == 0
    assert not stats.started
    close_ports(channel)


async def test_rule_5_messages_wait_in_a_disabled_queue() -> None:
    """Rule 5: messages posted to a port that is not started stay queued there."""
    channel = MessageChannel()
    for n in range(3):
        channel.port1.post_message(n)
    await trio.testing.wait_all_tasks_blocked()
    stats = channel.port2.statistics()
    assert stats.queued == 3
    assert not stats.started
    close_ports(channel)


async def test_rule_5_an_enabled_queue_is_never_disabled_again() -> None:
    """Rule 5: once started, removing every handler does not disable the queue."""
    channel = MessageChannel()
    port = channel.port2
    handler = [].append
    port.onmessage = handler
    port.add_event_listener("message", handler)
    port.onmessage = None
    port.remove_event_listener("message", handler)
    assert port.statistics().started
    channel.port1.post_message("still dispatched")
    assert (await port.receive()).data == "still dispatched"
    assert port.statistics().started
    close_ports(channel)


async def test_rule_6_unshipped_ports_dispatch_in_global_post_order() -> None:
    """Rule 6: started unshipped ports on one event loop dispatch in the order tasks were added."""
    first, second = MessageChannel(), MessageChannel()
    order: list[str] = []
    first.port2.onmessage = lambda event: order.append(event.data)
    second.port2.onmessage = lambda event: order.append(event.data)
    await trio.testing.wait_all_tasks_blocked()
    first.port1.post_message("A1")
    second.port1.post_message("B1")
    first.port1.post_message("A2")
    second.port1.post_message("B2")
    await trio.testing.wait_all_tasks_blocked()
    assert order == ["A1", "B1", "A2", "B2"]
    close_ports(first, second)


# -- J. Garbage collection --------------------------------------------------------------------


async def test_rule_61_started_port_with_handler_is_not_collected_while_entangled() -> None:
    """Rule 61: an entangled port whose queue is started with a handler outlives its last ref."""
    channel = MessageChannel()
    sender, got = channel.port1, []
    channel.port2.onmessage = lambda event: got.append(event.data)
    alive = weakref.ref(channel.port2)
    del channel
    gc.collect()
    await trio.testing.wait_all_tasks_blocked()
    assert alive() is not None
    assert sender.statistics().entangled
    sender.post_message("still delivered")
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["still delivered"]
    sender.close()


async def test_rule_49_a_started_port_with_a_message_listener_is_not_collected() -> None:
    """Rule 49: a started, entangled port with a message listener stays alive and receives."""
    channel = MessageChannel()
    sender, got = channel.port1, []
    channel.port2.add_event_listener("message", lambda event: got.append(event.data))
    channel.port2.start()
    del channel
    gc.collect()
    await trio.testing.wait_all_tasks_blocked()
    sender.post_message(1)
    await trio.testing.wait_all_tasks_blocked()
    assert got == [1]
    sender.close()


async def test_rule_49_a_started_port_with_a_messageerror_listener_is_not_collected() -> None:
    """Rule 49: a started, entangled port with a messageerror listener is kept alive too."""
    channel, closes = MessageChannel(), []
    survivor = channel.port1
    survivor.onclose = closes.append
    survivor.start()
    channel.port2.onmessageerror = lambda event: None
    channel.port2.start()
    alive = weakref.ref(channel.port2)
    del channel
    gc.collect()
    await trio.testing.wait_all_tasks_blocked()
    assert alive() is not None
    assert closes == []
    assert survivor.statistics().entangled
    survivor.close()


# -- D1. What starts the queue ----------------------------------------------------------------


async def test_d1_receive_starts_the_queue() -> None:
    """D1: receive() on a port that was never started starts it and gets queued messages."""
    channel = MessageChannel()
    channel.port1.post_message("queued before anyone listened")
    assert not channel.port2.statistics().started
    assert (await channel.port2.receive()).data == "queued before anyone listened"
    assert channel.port2.statistics().started
    close_ports(channel)


async def test_d1_async_for_starts_the_queue() -> None:
    """D1: async for over a port that was never started starts it."""
    channel = MessageChannel()
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    channel.port1.close()
    assert [event.data async for event in channel.port2] == [1, 2]
    assert channel.port2.statistics().started


async def test_d1_a_blocked_receive_has_started_the_queue() -> None:
    """D1: a task waiting in receive() has started the queue before any message arrives."""
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(channel.port2.receive)
        await trio.testing.wait_all_tasks_blocked()
        assert channel.port2.statistics().started
        assert channel.port2.statistics().tasks_waiting_receive == 1
        channel.port1.post_message("wakes it")
    close_ports(channel)


async def test_d1_onmessage_starts_the_queue() -> None:
    """D1: setting onmessage starts the queue."""
    channel, got = MessageChannel(), []
    channel.port1.post_message("x")
    channel.port2.onmessage = lambda event: got.append(event.data)
    assert channel.port2.statistics().started
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["x"]
    close_ports(channel)


async def test_d1_add_event_listener_does_not_start_the_queue() -> None:
    """D1: add_event_listener('message') alone leaves the queue disabled and delivers nothing."""
    channel, got = MessageChannel(), []
    channel.port2.add_event_listener("message", got.append)
    channel.port1.post_message("x")
    await trio.testing.wait_all_tasks_blocked()
    assert got == []
    assert not channel.port2.statistics().started
    assert channel.port2.statistics().queued == 1
    close_ports(channel)


async def test_d1_onmessageerror_and_onclose_do_not_start_the_queue() -> None:
    """D1: setting onmessageerror or onclose does not start the queue."""
    channel = MessageChannel()
    channel.port2.onmessageerror = lambda event: None
    channel.port2.onclose = lambda event: None
    channel.port1.post_message("x")
    await trio.testing.wait_all_tasks_blocked()
    assert not channel.port2.statistics().started
    assert channel.port2.statistics().queued == 1
    close_ports(channel)


async def test_d1_posting_and_statistics_do_not_start_the_queue() -> None:
    """D1: post_message, send and statistics() start neither port's queue."""
    channel = MessageChannel()
    channel.port1.post_message(1)
    await channel.port1.send(2)
    channel.port1.statistics()
    channel.port2.statistics()
    assert not channel.port1.statistics().started
    assert not channel.port2.statistics().started
    close_ports(channel)


# -- trio's face: receive, async for, send, aclose, statistics --------------------------------


async def test_receive_returns_a_message_event_targeting_the_receiver() -> None:
    """receive() returns a MessageEvent whose data is the message and target the receiver."""
    channel = MessageChannel()
    channel.port1.post_message({"n": 1})
    event = await channel.port2.receive()
    assert type(event) is MessageEvent
    assert event.type == "message"
    assert event.data == {"n": 1}
    assert event.target is channel.port2
    close_ports(channel)


async def test_async_for_yields_every_message_in_order_then_ends() -> None:
    """async for yields each message once, in order, and ends when the peer closes (D4)."""
    channel = MessageChannel()

    async def producer() -> None:
        for n in range(5):
            await channel.port1.send(n)
        await channel.port1.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        got = [event.data async for event in channel.port2]
    assert got == [0, 1, 2, 3, 4]


async def test_send_delivers_and_moves_the_transfer_list() -> None:
    """send() posts a clone and moves what transfer lists, like post_message."""
    channel, buf = MessageChannel(), ArrayBuffer(b"abc")
    await channel.port1.send({"buf": buf}, transfer=[buf])
    assert buf.detached
    event = await channel.port2.receive()
    assert bytes(event.data["buf"]) == b"abc"
    close_ports(channel)


async def test_send_raises_data_clone_error_like_post_message() -> None:
    """send() refuses what post_message refuses, with the same DataCloneError and no effect."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    with pytest.raises(DataCloneError) as info:
        await channel.port1.send({"f": print}, transfer=[buf])
    assert info.value.path == "message['f']"
    assert not buf.detached
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_send_in_a_cancelled_scope_sends_nothing() -> None:
    """send() in a cancelled scope raises Cancelled before anything is sent or detached."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await channel.port1.send(buf, transfer=[buf])
    assert scope.cancelled_caught
    assert not buf.detached
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_aclose_closes_the_port() -> None:
    """aclose() closes the port: it is marked closed and its peer's receive() ends."""
    channel = MessageChannel()
    await channel.port1.aclose()
    assert channel.port1.statistics().closed
    with pytest.raises(trio.EndOfChannel):
        await channel.port2.receive()


async def test_async_with_closes_the_port_on_exit() -> None:
    """async with port: closes the port when the block ends."""
    channel = MessageChannel()
    async with channel.port1 as port:
        assert port is channel.port1
        port.post_message("inside")
    assert channel.port1.statistics().closed
    assert [event.data async for event in channel.port2] == ["inside"]


async def test_statistics_is_a_frozen_attrs_snapshot() -> None:
    """statistics() returns a frozen attrs MessagePortStatistics that does not change later."""
    channel = MessageChannel()
    before = channel.port2.statistics()
    assert type(before) is MessagePortStatistics
    assert attrs.has(MessagePortStatistics)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        before.queued = 5  # type: ignore[misc]
    channel.port1.post_message("x")
    assert before.queued == 0
    assert channel.port2.statistics().queued == 1
    close_ports(channel)


async def test_statistics_of_a_new_port() -> None:
    """statistics() of a fresh port: nothing queued, not started, entangled, open, no waiters."""
    channel = MessageChannel()
    assert channel.port1.statistics() == MessagePortStatistics(
        queued=0,
        started=False,
        entangled=True,
        closed=False,
        transferred=False,
        tasks_waiting_receive=0,
        message_handlers=0,
    )
    close_ports(channel)


async def test_statistics_count_waiting_tasks_and_message_handlers() -> None:
    """statistics() counts tasks blocked in receive() and onmessage plus message listeners."""
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(channel.port2.receive)
        nursery.start_soon(channel.port2.receive)
        await trio.testing.wait_all_tasks_blocked()
        assert channel.port2.statistics().tasks_waiting_receive == 2
        channel.port1.post_message(1)
        channel.port1.post_message(2)
    assert channel.port2.statistics().tasks_waiting_receive == 0
    channel.port1.onmessage = lambda event: None
    channel.port1.add_event_listener("message", lambda event: None)
    channel.port1.add_event_listener("close", lambda event: None)
    assert channel.port1.statistics().message_handlers == 2
    close_ports(channel)


async def test_statistics_of_closed_and_transferred_ports() -> None:
    """statistics() tells a closed object from a transferred one."""
    channel, carrier = MessageChannel(), MessageChannel()
    channel.port1.close()
    carrier.port1.post_message(None, transfer=[channel.port2])
    closed, transferred = channel.port1.statistics(), channel.port2.statistics()
    assert (closed.closed, closed.transferred, closed.entangled) == (True, False, False)
    assert (transferred.closed, transferred.transferred, transferred.entangled) == (
        False,
        True,
        False,
    )
    close_ports(channel, carrier)


async def test_statistics_of_a_large_queue_count_every_message() -> None:
    """With a lagged notice first and the close marker last, every message in between counts."""
    channel = MessageChannel()
    group = PortCollection([channel.port1], max_queued=10_000, policy=SlowMemberPolicy.DROP_OLDEST)
    for n in range(12_000):
        group.post_message(n)
    core = channel.port2._core
    assert core is not None
    core.deliver(MESSAGE_ERROR, "could not deserialize")  # a message too, as a relay makes
    channel.port1.close()
    assert channel.port2.statistics().queued == 10_001
    assert repr(channel.port2).endswith("queued=10001>")
    with pytest.raises(Lagged):
        await channel.port2.receive()
    assert channel.port2.statistics().queued == 10_001


class _CountingDeque(deque[Any]):
    """A deque that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Iterator[Any]:
        self.walks += 1
        return super().__iter__()


async def test_statistics_and_repr_do_not_walk_the_queue() -> None:
    """statistics() and repr() cost the same whatever the queue holds: they never walk it."""
    channel = MessageChannel()
    core = channel.port2._core
    assert core is not None
    queue = core.queue = _CountingDeque(core.queue)
    for n in range(1_000):
        channel.port1.post_message(n)
    channel.port1.close()
    assert channel.port2.statistics().queued == 1_000
    assert repr(channel.port2).endswith("queued=1000>")
    assert queue.walks == 0


async def test_each_waiting_receiver_gets_its_own_message() -> None:
    """Several tasks blocked in receive() each get one message; none is lost or duplicated."""
    channel, got = MessageChannel(), []

    async def receiver() -> None:
        got.append((await channel.port2.receive()).data)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        for n in range(3):
            channel.port1.post_message(n)
    assert sorted(got) == [0, 1, 2]
    close_ports(channel)


async def test_the_longest_waiting_receiver_gets_the_next_message() -> None:
    """With several tasks in receive(), the next message goes to the one that waited longest."""
    channel, got = MessageChannel(), []

    async def receiver(name: str) -> None:
        got.append((name, (await channel.port2.receive()).data))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver, "first")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(receiver, "second")
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message(1)
        await trio.testing.wait_all_tasks_blocked()
        assert got == [("first", 1)]
        channel.port1.post_message(2)
    assert got == [("first", 1), ("second", 2)]
    close_ports(channel)


async def test_receive_on_a_port_with_message_handlers_is_busy() -> None:
    """receive() on a port with a message handler raises trio.BusyResourceError."""
    channel = MessageChannel()
    channel.port2.add_event_listener("message", lambda event: None)
    with pytest.raises(trio.BusyResourceError):
        await channel.port2.receive()
    close_ports(channel)


async def test_blocked_receivers_get_busy_when_a_message_handler_is_added() -> None:
    """Tasks blocked in receive() get BusyResourceError when a message handler is added."""
    channel = MessageChannel()

    def add_handler() -> None:
        channel.port2.onmessage = lambda event: None

    got = await blocked_receivers(channel.port2, add_handler, count=2)
    assert [type(x) for x in got] == [trio.BusyResourceError] * 2
    assert channel.port2.statistics().tasks_waiting_receive == 0
    close_ports(channel)


async def test_close_listeners_do_not_make_receive_busy() -> None:
    """A close listener is not a message handler: receive() still works beside it."""
    channel = MessageChannel()
    channel.port2.onclose = lambda event: None
    channel.port1.post_message("x")
    assert (await channel.port2.receive()).data == "x"
    close_ports(channel)


async def test_receive_works_again_once_the_last_message_handler_is_removed() -> None:
    """After the last message handler goes, receive() gets the messages from then on."""
    channel, got = MessageChannel(), []
    channel.port2.onmessage = lambda event: got.append(event.data)
    channel.port1.post_message("to the handler")
    await trio.testing.wait_all_tasks_blocked()
    channel.port2.onmessage = None
    channel.port1.post_message("to receive")
    assert (await channel.port2.receive()).data == "to receive"
    assert got == ["to the handler"]
    close_ports(channel)


async def test_cancelled_blocked_receive_loses_no_message() -> None:
    """A receive() cancelled while waiting leaves the next message for the next receive()."""
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(channel.port2.receive)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert channel.port2.statistics().tasks_waiting_receive == 0
    channel.port1.post_message("kept")
    assert (await channel.port2.receive()).data == "kept"
    close_ports(channel)


async def test_receive_cancelled_as_its_message_arrives_loses_no_message() -> None:
    """A receive() cancelled in the same step its message arrives either returns it or leaves it."""
    channel, got = MessageChannel(), []

    async def receiver(scope: trio.CancelScope) -> None:
        with scope:
            got.append((await channel.port2.receive()).data)

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver, scope)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("raced")
        scope.cancel()
    if not got:
        got.append((await channel.port2.receive()).data)
    assert got == ["raced"]
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_receive_cancelled_just_after_taking_a_queued_message_loses_nothing() -> None:
    """A receive() cancelled while it hands over an already-queued message still returns it."""
    for n in range(20):  # the receiver and the canceller run in one step, in either order
        channel, got = MessageChannel(), []
        channel.port1.post_message(n)
        scope = trio.CancelScope()

        async def receiver(port: MessagePort, got: list[object], scope: trio.CancelScope) -> None:
            with scope:
                got.append((await port.receive()).data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver, channel.port2, got, scope)
            await trio.lowlevel.checkpoint()
            scope.cancel()
        if not got:
            got.append((await channel.port2.receive()).data)
        assert got == [n]
        close_ports(channel)


async def test_receive_in_a_cancelled_scope_leaves_the_message_queued() -> None:
    """receive() in an already-cancelled scope raises Cancelled and takes nothing."""
    channel = MessageChannel()
    channel.port1.post_message("kept")
    with trio.CancelScope() as scope:
        scope.cancel()
        await channel.port2.receive()
    assert scope.cancelled_caught
    assert (await channel.port2.receive()).data == "kept"
    close_ports(channel)


async def test_post_message_through_trio_from_thread_delivers() -> None:
    """A worker thread posts through trio.from_thread.run_sync and the message arrives."""
    channel = MessageChannel()
    await trio.to_thread.run_sync(
        lambda: trio.from_thread.run_sync(channel.port1.post_message, "from a thread")
    )
    assert (await channel.port2.receive()).data == "from a thread"
    close_ports(channel)


async def test_receive_through_trio_from_thread() -> None:
    """A worker thread receives through trio.from_thread.run(port.receive)."""
    channel = MessageChannel()
    channel.port1.post_message("to a thread")
    event = await trio.to_thread.run_sync(lambda: trio.from_thread.run(channel.port2.receive))
    assert event.data == "to a thread"
    close_ports(channel)


# -- receive_nowait(): trio's MemoryReceiveChannel.receive_nowait -----------------------------


async def test_receive_nowait_takes_what_is_queued_in_order_then_would_block() -> None:
    """receive_nowait() returns the queued messages in order, as receive() would, then raises
    trio.WouldBlock; it starts the queue (D1), as receive() does."""
    channel = MessageChannel()
    for n in range(3):
        channel.port1.post_message(n)
    assert channel.port2._core is not None
    assert not channel.port2._core.enabled
    events = [channel.port2.receive_nowait() for _ in range(3)]  # the first call starts it
    assert channel.port2._core.enabled
    assert [e.data for e in events] == [0, 1, 2]
    assert all(type(e) is MessageEvent and e.target is channel.port2 for e in events)
    with pytest.raises(trio.WouldBlock):
        channel.port2.receive_nowait()
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_receive_nowait_is_no_checkpoint() -> None:
    """receive_nowait() neither yields nor checks for cancellation (trio's *_nowait rule)."""
    channel = MessageChannel()
    channel.port2.start()
    channel.port1.post_message("here")
    with trio.CancelScope() as scope:
        scope.cancel()
        assert channel.port2.receive_nowait().data == "here"  # no Cancelled here
        with pytest.raises(trio.WouldBlock):
            channel.port2.receive_nowait()
        await trio.lowlevel.checkpoint()  # the first checkpoint raises it
        pytest.fail("not cancelled")
    assert scope.cancelled_caught
    close_ports(channel)


async def test_receive_nowait_drains_after_receive() -> None:
    """The draining idiom: await receive() for one, receive_nowait() for the rest, and
    every message arrives once, in order, with its ports."""
    channel, carried = MessageChannel(), MessageChannel()
    got: list[object] = []
    arrived: list[MessagePort] = []
    async with trio.open_nursery() as nursery:

        async def drain() -> None:
            async for event in channel.port2:
                got.append(event.data)
                while True:
                    try:
                        event = channel.port2.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):  # async for sees the end
                        break
                    got.append((event.data, len(event.ports)))
                    arrived.extend(event.ports)

        nursery.start_soon(drain)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message(0)
        channel.port1.post_message(1, transfer=[carried.port2])
        for n in range(2, 100):
            channel.port1.post_message(n)
        channel.port1.close()
    assert got == [0, (1, 1), *((n, 0) for n in range(2, 100))]
    close_ports(carried, arrived)


async def test_receive_nowait_gives_end_of_channel_after_the_last_message() -> None:
    """D4 for receive_nowait(): the messages the closed peer sent, then EndOfChannel, again
    and again."""
    channel = MessageChannel()
    channel.port1.post_message(1)
    channel.port1.close()
    assert channel.port2.receive_nowait().data == 1
    for _ in range(2):
        with pytest.raises(trio.EndOfChannel):
            channel.port2.receive_nowait()


async def test_receive_nowait_errors_are_receives() -> None:
    """Closed: ClosedResourceError; with a message handler: BusyResourceError; while a
    receive() has the head in hand: WouldBlock, and the head is not overtaken."""
    closed = MessageChannel()
    closed.port2.close()
    with pytest.raises(trio.ClosedResourceError):
        closed.port2.receive_nowait()
    handled = MessageChannel()
    handled.port2.onmessage = lambda event: None
    with pytest.raises(trio.BusyResourceError):
        handled.port2.receive_nowait()
    busy = MessageChannel()
    busy.port1.post_message("head")
    busy.port1.post_message("next")
    got: list[object] = []
    async with trio.open_nursery() as nursery:

        async def receiver() -> None:
            got.append((await busy.port2.receive()).data)

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()  # it holds "head" until its step ends
        core = busy.port2._core
        assert core is not None
        if core.busy:
            with pytest.raises(trio.WouldBlock):
                busy.port2.receive_nowait()
    assert got == ["head"]
    assert busy.port2.receive_nowait().data == "next"
    close_ports(closed, handled, busy)


async def test_receive_nowait_raises_lagged_like_receive() -> None:
    """A DROP_OLDEST collection's lagged notice: Lagged once, then the newest messages."""
    channel = MessageChannel()
    group = PortCollection([channel.port1], max_queued=2, policy=SlowMemberPolicy.DROP_OLDEST)
    for n in range(5):
        group.post_message(n)
    with pytest.raises(Lagged) as lagged:
        channel.port2.receive_nowait()
    assert lagged.value.missed == 3
    assert [channel.port2.receive_nowait().data for _ in range(2)] == [3, 4]
    close_ports(channel)


async def test_receive_nowait_from_another_thread_is_refused_and_takes_nothing() -> None:
    channel = MessageChannel()
    channel.port1.post_message("stays")
    channel.port2.start()
    with pytest.raises(RuntimeError, match="receive_nowait"):
        await trio.to_thread.run_sync(channel.port2.receive_nowait)
    assert channel.port2.receive_nowait().data == "stays"
    close_ports(channel)


# -- D4. receive() after a close --------------------------------------------------------------


async def test_d4_receive_after_peer_closed_gives_earlier_messages_then_end_of_channel() -> None:
    """D4: after the peer closes, receive() returns what it sent, then raises EndOfChannel."""
    channel = MessageChannel()
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    channel.port1.close()
    assert (await channel.port2.receive()).data == 1
    assert (await channel.port2.receive()).data == 2
    with pytest.raises(trio.EndOfChannel):
        await channel.port2.receive()
    with pytest.raises(trio.EndOfChannel):
        await channel.port2.receive()


async def test_d4_blocked_receive_gets_end_of_channel_when_peer_closes() -> None:
    """D4: a task waiting in receive() gets EndOfChannel when the peer closes."""
    channel = MessageChannel()
    got = await blocked_receivers(channel.port2, channel.port1.close)
    assert [type(x) for x in got] == [trio.EndOfChannel]


async def test_d4_receive_after_own_close_is_closed_resource_error() -> None:
    """D4: receive() on a port you closed raises trio.ClosedResourceError."""
    channel = MessageChannel()
    channel.port2.close()
    with pytest.raises(trio.ClosedResourceError):
        await channel.port2.receive()


async def test_d4_blocked_receive_gets_closed_resource_error_when_own_port_closes() -> None:
    """D4: tasks waiting in receive() get ClosedResourceError when their port is closed."""
    channel = MessageChannel()
    got = await blocked_receivers(channel.port2, channel.port2.close)
    assert [type(x) for x in got] == [trio.ClosedResourceError]


async def test_d4_async_for_over_a_closed_port_raises_closed_resource_error() -> None:
    """D4: async for over a port you closed raises ClosedResourceError rather than ending."""
    channel = MessageChannel()
    channel.port2.close()
    with pytest.raises(trio.ClosedResourceError):
        async for _ in channel.port2:
            pass


async def test_d4_receive_on_a_transferred_port_is_closed_resource_error() -> None:
    """D4: receive() on a port that was transferred away raises ClosedResourceError."""
    channel, carrier = MessageChannel(), MessageChannel()
    carrier.port1.post_message(None, transfer=[channel.port2])
    with pytest.raises(trio.ClosedResourceError):
        await channel.port2.receive()
    close_ports(channel, carrier)


async def test_d4_blocked_receive_gets_closed_resource_error_when_port_is_transferred() -> None:
    """D4: a task waiting in receive() gets ClosedResourceError when its port is transferred."""
    channel, carrier = MessageChannel(), MessageChannel()
    got = await blocked_receivers(
        channel.port2, lambda: carrier.port1.post_message(None, transfer=[channel.port2])
    )
    assert [type(x) for x in got] == [trio.ClosedResourceError]
    close_ports(channel, carrier)


@drops_entangled_ports
async def test_d4_receive_ends_when_the_peer_is_garbage_collected() -> None:
    """D4/D5: a peer collected while entangled ends receive() with EndOfChannel."""
    channel = MessageChannel()
    survivor = channel.port1
    channel.port2.post_message("sent before it went")
    del channel
    gc.collect()
    await trio.testing.wait_all_tasks_blocked()
    assert (await survivor.receive()).data == "sent before it went"
    with pytest.raises(trio.EndOfChannel):
        await survivor.receive()
    survivor.close()


# -- D6. send() after a close -----------------------------------------------------------------


async def test_d6_send_when_peer_closed_is_broken_resource_error_and_detaches_nothing() -> None:
    """D6: send() when the peer is gone raises BrokenResourceError; nothing sent or detached."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    channel.port2.close()
    with pytest.raises(trio.BrokenResourceError):
        await channel.port1.send(buf, transfer=[buf])
    assert not buf.detached


async def test_d6_send_after_own_close_is_closed_resource_error() -> None:
    """D6: send() on a port you closed raises trio.ClosedResourceError."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    channel.port1.close()
    with pytest.raises(trio.ClosedResourceError):
        await channel.port1.send(buf, transfer=[buf])
    assert not buf.detached


async def test_d6_send_on_a_transferred_port_is_closed_resource_error() -> None:
    """D6: send() on a port that was transferred away raises ClosedResourceError."""
    channel, carrier = MessageChannel(), MessageChannel()
    carrier.port1.post_message(None, transfer=[channel.port1])
    with pytest.raises(trio.ClosedResourceError):
        await channel.port1.send("x")
    close_ports(channel, carrier)


async def test_d6_send_after_a_doomed_message_is_broken_resource_error() -> None:
    """D6/D7: once a doomed message lost the channel, send() raises BrokenResourceError."""
    channel = MessageChannel()
    channel.port1.post_message(None, transfer=[channel.port2])
    with pytest.raises(trio.BrokenResourceError):
        await channel.port1.send("x")


async def test_d6_post_message_when_peer_closed_is_a_silent_no_op() -> None:
    """D6: post_message when the peer is gone returns quietly and queues nothing anywhere."""
    channel = MessageChannel()
    channel.port2.close()
    assert channel.port1.post_message("lost") is None
    await trio.testing.wait_all_tasks_blocked()
    stats = channel.port1.statistics()
    assert not stats.entangled
    assert stats.queued == 0
