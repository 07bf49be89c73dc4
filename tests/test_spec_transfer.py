"""Conformance: transfer lists and transferred ports (spec section C, rules 21-35; D3, D9).

Skipped here: rule 22 (Python has no SharedArrayBuffer) and the resizable-buffer part of rule
27 (``ArrayBuffer`` is fixed-length). Buffer specifics are in test_buffers.py.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
import trio
import trio.testing
from _helpers import close_ports

from actors import (
    ArrayBuffer,
    DataCloneError,
    MessageChannel,
    MessageEvent,
    MessagePort,
    structured_clone,
)


async def _moved(port: MessagePort) -> MessagePort:
    """Transfer ``port`` through a fresh channel and return the port that arrives."""
    carrier = MessageChannel()
    carrier.port1.post_message(None, transfer=[port])
    moved = (await carrier.port2.receive()).ports[0]
    close_ports(carrier)
    return moved


# -- 21-23: what may be in the list ------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(bytearray(b"x"), id="bytearray"),
        pytest.param(b"x", id="bytes"),
        pytest.param(memoryview(b"x"), id="memoryview"),
        pytest.param({}, id="dict"),
        pytest.param(object(), id="object"),
        pytest.param("port", id="str"),
        pytest.param(None, id="None"),
    ],
)
async def test_rule_21_a_non_transferable_entry_is_data_clone_error(item: object) -> None:
    """Rule 21: an entry that is neither a MessagePort nor an ArrayBuffer raises DataCloneError."""
    channel = MessageChannel()
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message("x", transfer=[item])
    assert info.value.path == "transfer[0]"
    assert info.value.value is item
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_rule_21_a_channel_object_is_not_transferable() -> None:
    """Rule 21: a MessageChannel itself cannot be listed; only its ports can."""
    channel, other = MessageChannel(), MessageChannel()
    with pytest.raises(DataCloneError):
        channel.port1.post_message(None, transfer=[other])
    assert other.port1.statistics().entangled
    close_ports(channel, other)


async def test_rule_21_the_error_names_the_entry_index() -> None:
    """Rule 21: the error's path is the offending entry's index, and earlier entries stay put."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message(buf, transfer=[buf, bytearray(1)])
    assert info.value.path == "transfer[1]"
    assert str(info.value).startswith("transfer[1]: ")
    assert not buf.detached
    close_ports(channel)


async def test_rule_23_a_port_listed_twice_is_data_clone_error() -> None:
    """Rule 23: the same port twice in the transfer list raises DataCloneError; nothing moves."""
    channel, other = MessageChannel(), MessageChannel()
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message(None, transfer=[other.port1, other.port1])
    assert info.value.path == "transfer[1]"
    assert other.port1.statistics().entangled
    assert not other.port1.statistics().transferred
    close_ports(channel, other)


async def test_rule_23_a_buffer_listed_twice_is_data_clone_error() -> None:
    """Rule 23: the same buffer twice in the transfer list raises DataCloneError; nothing moves."""
    channel, buf = MessageChannel(), ArrayBuffer(3)
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message(buf, transfer=(b for b in [buf, buf]))
    assert info.value.path == "transfer[1]"
    assert not buf.detached
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


# -- 24-26: detached entries -------------------------------------------------------------------


async def test_rule_24_a_serialization_error_wins_over_a_detached_entry() -> None:
    """Rule 24: the message is serialized first, so its error is raised, not the detached one."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    structured_clone(buf, transfer=[buf])
    assert buf.detached
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message({"callback": print}, transfer=[buf])
    assert info.value.path == "message['callback']"
    close_ports(channel)


async def test_rule_25_a_detached_buffer_cannot_be_transferred() -> None:
    """Rule 25: a buffer that was already transferred raises DataCloneError."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    channel.port1.post_message(None, transfer=[buf])
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message(None, transfer=[buf])
    assert info.value.path == "transfer[0]"
    assert info.value.value is buf
    close_ports(channel)


async def test_rule_25_d9_a_transferred_port_cannot_be_transferred_again() -> None:
    """Rule 25 (D9): transferring a port a second time raises DataCloneError."""
    channel, other = MessageChannel(), MessageChannel()
    channel.port1.post_message(None, transfer=[other.port1])
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message(None, transfer=[other.port1])
    assert info.value.path == "transfer[0]"
    assert info.value.value is other.port1
    close_ports(channel, other)


async def test_rule_25_a_closed_port_cannot_be_transferred() -> None:
    """Rule 25: close() detaches a port, so transferring it raises DataCloneError."""
    channel, other = MessageChannel(), MessageChannel()
    other.port1.close()
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message(None, transfer=[other.port1])
    assert info.value.value is other.port1
    assert channel.port2.statistics().queued == 0
    close_ports(channel, other)


class _DetachesDuringClone(Exception):
    """An exception whose ``__new__`` (run while the message is cloned) detaches a buffer."""

    victim: ClassVar[list[ArrayBuffer]] = []

    def __new__(cls, *args: object) -> _DetachesDuringClone:
        while cls.victim:
            buf = cls.victim.pop()
            structured_clone(buf, transfer=[buf])  # moves it elsewhere: detached
        return super().__new__(cls, *args)


async def test_rule_26_an_entry_detached_during_serialization_is_data_clone_error() -> None:
    """Rule 26: an entry detached while the message is being cloned raises DataCloneError."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    message = _DetachesDuringClone("boom")
    _DetachesDuringClone.victim.append(buf)
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message(message, transfer=[buf])
    assert info.value.path == "transfer[0]"
    assert buf.detached  # by the sneaky __new__, not by post_message
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


# -- 27-28: side effects and atomicity ---------------------------------------------------------


async def test_rule_27_a_transferred_buffer_is_detached_and_its_bytes_arrive() -> None:
    """Rule 27: the sender's buffer is detached (length 0); the receiver gets the same bytes."""
    channel, buf = MessageChannel(), ArrayBuffer(b"payload")
    channel.port1.post_message(buf, transfer=[buf])
    assert buf.byte_length == 0
    assert buf.detached
    received = (await channel.port2.receive()).data
    assert received is not buf
    assert received.byte_length == 7
    assert bytes(received) == b"payload"
    close_ports(channel)


async def test_rule_27_a_transferred_port_is_detached() -> None:
    """Rule 27: a transferred port is detached: transferred, not entangled, nothing queued."""
    channel, other = MessageChannel(), MessageChannel()
    other.port2.post_message("queued at other.port1")
    channel.port1.post_message(None, transfer=[other.port1])
    stats = other.port1.statistics()
    assert (stats.transferred, stats.entangled, stats.queued) == (True, False, 0)
    close_ports(channel, other)


@pytest.mark.parametrize("bad", ["closed-port", "duplicate", "source-port", "not-transferable"])
async def test_rule_28_d3_a_failed_transfer_detaches_nothing(bad: str) -> None:
    """Rule 28 (D3): when any entry is refused, no earlier or later entry is detached."""
    channel, buf, other = MessageChannel(), ArrayBuffer(4), MessageChannel()
    closer = MessageChannel()
    closed = closer.port1
    closed.close()
    culprit = {
        "closed-port": closed,
        "duplicate": buf,
        "source-port": channel.port1,
        "not-transferable": "text",
    }[bad]
    with pytest.raises(DataCloneError):
        channel.port1.post_message(buf, transfer=[buf, other.port1, culprit])
    assert not buf.detached
    assert not other.port1.statistics().transferred
    assert other.port1.statistics().entangled
    assert channel.port1.statistics().entangled
    assert channel.port2.statistics().queued == 0
    close_ports(channel, other, closer)


async def test_rule_28_d3_an_uncloneable_message_detaches_nothing() -> None:
    """Rule 28 (D3): a message that cannot be cloned leaves every listed object in place."""
    channel, buf, other = MessageChannel(), ArrayBuffer(4), MessageChannel()
    with pytest.raises(DataCloneError):
        channel.port1.post_message([buf, other.port1, print], transfer=[buf, other.port1])
    assert not buf.detached
    assert not other.port1.statistics().transferred
    close_ports(channel, other)


async def test_rule_28_d3_a_buffer_with_a_live_view_detaches_nothing_else() -> None:
    """Rule 28 (D3): a buffer refused for its live view leaves a listed port in place."""
    channel, viewed, other = MessageChannel(), ArrayBuffer(4), MessageChannel()
    with viewed.view(), pytest.raises(DataCloneError) as info:
        channel.port1.post_message(None, transfer=[other.port1, viewed])
    assert info.value.path == "transfer[1]"
    assert not other.port1.statistics().transferred
    assert not viewed.detached
    close_ports(channel, other)


async def test_rule_28_d3_the_failed_port_keeps_its_queue_and_works() -> None:
    """Rule 28 (D3): a port in a failed transfer keeps its queued messages and still receives."""
    channel, other = MessageChannel(), MessageChannel()
    other.port2.post_message("still here")
    with pytest.raises(DataCloneError):
        channel.port1.post_message(print, transfer=[other.port1])
    assert (await other.port1.receive()).data == "still here"
    close_ports(channel, other)


# -- 29-35: transferred ports ------------------------------------------------------------------


async def test_rule_29_transferring_a_port_keeps_its_entanglement() -> None:
    """Rule 29: the moved end stays entangled with its partner, which notices nothing."""
    channel = MessageChannel()
    moved = await _moved(channel.port2)
    assert moved.statistics().entangled
    assert channel.port1.statistics().entangled
    moved.post_message("from the moved end")
    assert (await channel.port1.receive()).data == "from the moved end"
    close_ports(channel, moved)


async def test_rule_29_transferring_the_peer_fires_no_close_event() -> None:
    """Rule 29: moving a port is not a close, so its started partner gets no close event."""
    channel, closes = MessageChannel(), []
    channel.port1.onclose = closes.append
    channel.port1.start()
    moved = await _moved(channel.port2)
    await trio.testing.wait_all_tasks_blocked()
    assert closes == []
    moved.post_message("hello")
    assert (await channel.port1.receive()).data == "hello"
    close_ports(channel, moved)


async def test_rule_30_the_received_port_is_a_new_object_with_its_queue_disabled() -> None:
    """Rule 30: the received port is new and starts disabled even if the sent one was started."""
    channel = MessageChannel()
    channel.port2.start()
    channel.port1.post_message(1)
    moved = await _moved(channel.port2)
    assert moved is not channel.port2
    stats = moved.statistics()
    assert (stats.started, stats.queued) == (False, 1)
    close_ports(channel, moved)


async def test_rule_30_handlers_do_not_travel_with_the_port() -> None:
    """Rule 30: listeners stay on the old object; the received port has none."""
    channel = MessageChannel()
    channel.port2.add_event_listener("message", lambda event: None)
    channel.port2.onclose = lambda event: None
    moved = await _moved(channel.port2)
    assert moved.onclose is None
    assert moved.onmessage is None
    assert moved.statistics().message_handlers == 0
    close_ports(channel, moved)


async def test_rule_30_received_port_dispatches_to_its_own_onmessage() -> None:
    """Rule 30: a port that had a dispatching onmessage, once moved, dispatches to the new one."""
    channel, got = MessageChannel(), []
    channel.port2.onmessage = lambda event: None
    await trio.testing.wait_all_tasks_blocked()
    moved = structured_clone(channel.port2, transfer=[channel.port2])
    moved.onmessage = lambda event: got.append(event.data)
    channel.port1.post_message("for the new handler")
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["for the new handler"]
    close_ports(channel)


async def test_rule_30_a_port_moved_during_an_async_handler_serves_its_new_handler() -> None:
    """Rule 30: moved while an old async handler runs, the port's later messages reach the new."""
    channel, got, gate = MessageChannel(), [], trio.Event()

    async def slow(event: MessageEvent) -> None:
        got.append(("old", event.data))
        await gate.wait()

    channel.port2.onmessage = slow
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    await trio.testing.wait_all_tasks_blocked()
    moved = structured_clone(channel.port2, transfer=[channel.port2])
    moved.onmessage = lambda event: got.append(("new", event.data))
    gate.set()
    await trio.testing.wait_all_tasks_blocked()
    assert got == [("old", 1), ("new", 2)]
    close_ports(channel)


async def test_rule_31_queued_messages_travel_with_the_port() -> None:
    """Rule 31: messages queued at a port (even a started one) move with it, in order."""
    channel, carrier = MessageChannel(), MessageChannel()
    channel.port2.start()
    channel.port1.post_message("first")
    channel.port1.post_message("second")
    carrier.port1.post_message(None, transfer=[channel.port2])
    moved = (await carrier.port2.receive()).ports[0]
    assert (await moved.receive()).data == "first"
    assert (await moved.receive()).data == "second"
    close_ports(channel, carrier)


async def test_rule_31_pending_messages_skip_the_old_handler() -> None:
    """Rule 31: a message pending at a handled port transferred in the same step is not handled."""
    channel, carrier, got = MessageChannel(), MessageChannel(), []
    channel.port2.onmessage = lambda event: got.append(event.data)
    await trio.testing.wait_all_tasks_blocked()
    channel.port1.post_message("travels")
    carrier.port1.post_message(None, transfer=[channel.port2])
    moved = (await carrier.port2.receive()).ports[0]
    assert (await moved.receive()).data == "travels"
    await trio.testing.wait_all_tasks_blocked()
    assert got == []
    close_ports(channel, carrier)


async def test_rule_32_order_kept_when_both_ends_are_transferred() -> None:
    """Rule 32: both ends moved in one message: 1 sent before, 2 and 3 after, arrive in order."""
    channel, carrier = MessageChannel(), MessageChannel()
    channel.port1.post_message(1)
    carrier.port1.post_message(None, transfer=[channel.port1, channel.port2])
    sender, receiver = (await carrier.port2.receive()).ports
    sender.post_message(2)
    sender.post_message(3)
    assert [(await receiver.receive()).data for _ in range(3)] == [1, 2, 3]
    close_ports(channel, carrier, sender, receiver)


async def test_rule_32_incoming_messages_keep_order_across_two_hops() -> None:
    """Rule 32: messages to a port moved twice, sent at every stage, arrive in order."""
    channel, hop1, hop2 = MessageChannel(), MessageChannel(), MessageChannel()
    channel.port1.post_message("First")
    hop1.port1.post_message(None, transfer=[channel.port2])
    channel.port1.post_message("Second")
    middle = (await hop1.port2.receive()).ports[0]
    channel.port1.post_message("Third")
    hop2.port1.post_message(None, transfer=[middle])
    channel.port1.post_message("Fourth")
    final = (await hop2.port2.receive()).ports[0]
    assert [(await final.receive()).data for _ in range(4)] == [
        "First",
        "Second",
        "Third",
        "Fourth",
    ]
    close_ports(channel, hop1, hop2)


async def test_rule_32_outgoing_messages_keep_order_across_two_hops() -> None:
    """Rule 32: messages posted from a port at each hop reach the fixed partner in order."""
    channel, hop1, hop2 = MessageChannel(), MessageChannel(), MessageChannel()
    channel.port2.post_message("First")
    hop1.port1.post_message(None, transfer=[channel.port2])
    middle = (await hop1.port2.receive()).ports[0]
    middle.post_message("Second")
    middle.post_message("Third")
    hop2.port1.post_message(None, transfer=[middle])
    final = (await hop2.port2.receive()).ports[0]
    final.post_message("Fourth")
    assert [(await channel.port1.receive()).data for _ in range(4)] == [
        "First",
        "Second",
        "Third",
        "Fourth",
    ]
    close_ports(channel, hop1, hop2)


async def test_rule_32_messages_sent_while_in_flight_follow_the_port() -> None:
    """Rule 32: messages the partner sends while the port is in flight arrive after earlier ones."""
    channel, carrier = MessageChannel(), MessageChannel()
    channel.port1.post_message("before")
    carrier.port1.post_message(None, transfer=[channel.port2])
    channel.port1.post_message("in flight")
    moved = (await carrier.port2.receive()).ports[0]
    channel.port1.post_message("after")
    assert [(await moved.receive()).data for _ in range(3)] == ["before", "in flight", "after"]
    close_ports(channel, carrier)


async def test_rule_33_posting_on_the_original_object_is_silently_dropped() -> None:
    """Rule 33: after PING, a transfer and PONG from the old object, the partner sees PING only."""
    channel = MessageChannel()
    channel.port1.post_message("PING")
    moved = await _moved(channel.port1)
    assert channel.port1.post_message("PONG") is None
    moved.post_message("TRANSFERRED")
    moved.close()
    assert [event.data async for event in channel.port2] == ["PING", "TRANSFERRED"]
    close_ports(channel, moved)


async def test_rule_34_the_received_port_is_a_different_object_talking_to_the_partner() -> None:
    """Rule 34: the received port is not the sent object, and the partner's messages reach it."""
    channel_b = MessageChannel()
    moved = await _moved(channel_b.port2)
    assert moved is not channel_b.port2
    channel_b.port1.post_message("ping")
    assert (await moved.receive()).data == "ping"
    close_ports(channel_b, moved)


async def test_rule_35_both_ports_of_one_channel_may_travel_in_one_message() -> None:
    """Rule 35: both ends of a channel can be transferred together and still talk."""
    channel, carrier = MessageChannel(), MessageChannel()
    carrier.port1.post_message(None, transfer=[channel.port1, channel.port2])
    first, second = (await carrier.port2.receive()).ports
    first.post_message("across")
    second.post_message("back")
    assert (await second.receive()).data == "across"
    assert (await first.receive()).data == "back"
    close_ports(channel, carrier, first, second)


# -- D9: a shipped port is dead at once --------------------------------------------------------


async def test_d9_a_shipped_port_is_dead_before_the_message_is_received() -> None:
    """D9: right after post_message, the transferred object is detached, before any delivery."""
    channel, carrier = MessageChannel(), MessageChannel()
    carrier.port1.post_message(None, transfer=[channel.port2])
    assert channel.port2.statistics().transferred
    assert channel.port2.post_message("ignored") is None
    with pytest.raises(trio.ClosedResourceError):
        await channel.port2.receive()
    with pytest.raises(trio.ClosedResourceError):
        await channel.port2.send("x")
    await trio.testing.wait_all_tasks_blocked()
    assert channel.port1.statistics().queued == 0
    close_ports(channel, carrier)


async def test_d9_close_on_a_shipped_port_does_nothing() -> None:
    """D9: close() on the dead original neither raises nor disturbs the moved port."""
    channel = MessageChannel()
    moved = await _moved(channel.port2)
    channel.port2.close()
    assert moved.statistics().entangled
    channel.port1.post_message("still works")
    assert (await moved.receive()).data == "still works"
    close_ports(channel, moved)


async def test_structured_clone_moves_a_port_like_post_message() -> None:
    """structured_clone(port, transfer=[port]) returns a new port entangled with the partner."""
    channel = MessageChannel()
    moved = structured_clone({"p": channel.port2}, transfer=[channel.port2])["p"]
    assert type(moved) is MessagePort
    assert channel.port2.statistics().transferred
    channel.port1.post_message("x")
    assert (await moved.receive()).data == "x"
    close_ports(channel)
