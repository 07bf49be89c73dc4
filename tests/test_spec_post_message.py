"""Conformance: ``post_message`` and the message event (spec section B, rules 7-20, and D7).

Also the shape of ``DataCloneError`` (``.value``, ``.path`` and its message) as post_message
raises it. Skipped here: rule 7's options dictionary (``{transfer: [...]}``) and rule 20's
dictionary members have no Python form, since ``transfer`` is a plain iterable or ``None``;
rule 14's Worker part has no equivalent in one trio runtime.
"""

from __future__ import annotations

import sys
import threading

import pytest
import trio
import trio.testing
from _helpers import close_ports

from actors import ArrayBuffer, DataCloneError, Event, MessageChannel, MessageEvent

# -- 7, 8: calling forms and the target ------------------------------------------------------


async def test_rule_7_one_argument_post_message_sends_no_ports() -> None:
    """Rule 7: post_message(message) alone sends the message with an empty ports tuple."""
    channel = MessageChannel()
    channel.port1.post_message("only a message")
    event = await channel.port2.receive()
    assert event.data == "only a message"
    assert event.ports == ()
    close_ports(channel)


async def test_rule_7_every_calling_form_moves_the_transfer_list() -> None:
    """Rule 7: positional and keyword transfer, on post_message and send, all detach buffers."""
    channel = MessageChannel()
    bufs = [ArrayBuffer(bytes([n])) for n in range(4)]
    channel.port1.post_message(bufs[0], [bufs[0]])
    channel.port1.post_message(bufs[1], transfer=[bufs[1]])
    await channel.port1.send(bufs[2], [bufs[2]])
    await channel.port1.send(bufs[3], transfer=[bufs[3]])
    assert [buf.byte_length for buf in bufs] == [0, 0, 0, 0]
    received = [bytes((await channel.port2.receive()).data) for _ in range(4)]
    assert received == [b"\x00", b"\x01", b"\x02", b"\x03"]
    close_ports(channel)


async def test_rule_8_the_target_is_whatever_the_poster_is_entangled_with_now() -> None:
    """Rule 8: after the partner moved, posting reaches the partner's new object."""
    channel, carrier = MessageChannel(), MessageChannel()
    carrier.port1.post_message(None, transfer=[channel.port2])
    moved = (await carrier.port2.receive()).ports[0]
    channel.port1.post_message("follows the move")
    assert (await moved.receive()).data == "follows the move"
    close_ports(channel, carrier)


# -- 9, 10: the source port and its partner in the transfer list (D7) --------------------------


async def test_rule_9_d7_transferring_the_source_port_is_data_clone_error() -> None:
    """Rule 9 (D7): a transfer list naming the posting port raises DataCloneError at its index."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message("x", transfer=[buf, channel.port1])
    assert info.value.path == "transfer[1]"
    assert info.value.value is channel.port1
    close_ports(channel)


async def test_rule_9_d7_transferring_the_source_port_has_no_side_effects() -> None:
    """Rule 9 (D7): after that error nothing is detached and the channel keeps working."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    with pytest.raises(DataCloneError):
        channel.port1.post_message("x", transfer=[buf, channel.port1])
    assert not buf.detached
    assert channel.port1.statistics().entangled
    assert channel.port2.statistics().queued == 0
    channel.port1.post_message("later")
    assert (await channel.port2.receive()).data == "later"
    close_ports(channel)


async def test_rule_10_d7_transferring_the_target_port_is_not_an_error() -> None:
    """Rule 10 (D7): naming the partner raises nothing and detaches every listed object."""
    channel, buf = MessageChannel(), ArrayBuffer(b"abc")
    channel.port2.post_message("doomed", transfer=[channel.port1, buf])
    assert buf.detached
    assert channel.port1.statistics().transferred


async def test_rule_10_d7_doomed_message_is_never_delivered_and_the_channel_is_lost() -> None:
    """Rule 10 (D7): the doomed message arrives nowhere and the sender is disentangled."""
    channel = MessageChannel()
    channel.port2.post_message("doomed", transfer=[channel.port1])
    assert not channel.port2.statistics().entangled
    with pytest.raises(trio.EndOfChannel):
        await channel.port2.receive()


async def test_rule_10_d7_doomed_message_fires_close_at_the_started_sender() -> None:
    """Rule 10 (D7): the sender, started with onclose, gets a close event for the lost channel."""
    channel, closes = MessageChannel(), []
    channel.port2.onclose = closes.append
    channel.port2.start()
    channel.port2.post_message("doomed", transfer=[channel.port1])
    await trio.testing.wait_all_tasks_blocked()
    assert [(type(e), e.type, e.target) for e in closes] == [(Event, "close", channel.port2)]


async def test_rule_10_d7_doomed_message_logs_a_warning(logs: list[dict[str, object]]) -> None:
    """Rule 10 (D7): a doomed message is logged as a message_doomed warning."""
    channel = MessageChannel()
    channel.port2.post_message("doomed", transfer=[channel.port1])
    doomed = [entry for entry in logs if entry["event"] == "message_doomed"]
    assert len(doomed) == 1
    assert doomed[0]["log_level"] == "warning"


async def test_rule_10_d7_ports_in_a_doomed_message_are_closed() -> None:
    """Rule 10 (D7): other ports moved by a doomed message are closed, so their peers end."""
    channel, other = MessageChannel(), MessageChannel()
    channel.port2.post_message("doomed", transfer=[channel.port1, other.port2])
    assert other.port2.statistics().transferred
    with pytest.raises(trio.EndOfChannel):
        await other.port1.receive()


# -- 11, 12: serialization errors and dead ports -----------------------------------------------


def _generator():  # type: ignore[no-untyped-def]
    yield 1


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(lambda: None, id="lambda"),
        pytest.param(print, id="builtin-function"),
        pytest.param(sys, id="module"),
        pytest.param(object(), id="object"),
        pytest.param(threading.Lock(), id="thread-lock"),
        pytest.param(_generator(), id="generator"),
        pytest.param(vars(sys), id="module-globals"),
    ],
)
async def test_rule_11_uncloneable_message_is_data_clone_error(value: object) -> None:
    """Rule 11: a message holding something uncloneable raises DataCloneError and sends nothing."""
    channel = MessageChannel()
    with pytest.raises(DataCloneError):
        channel.port1.post_message({"value": value})
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_rule_11_data_clone_error_is_a_type_error() -> None:
    """Rule 11: DataCloneError is a subclass of TypeError."""
    assert issubclass(DataCloneError, TypeError)
    channel = MessageChannel()
    with pytest.raises(TypeError):
        channel.port1.post_message(print)
    close_ports(channel)


async def test_rule_11_data_clone_error_names_the_value_and_where_it_sits() -> None:
    """Rule 11: DataCloneError has .value, .path and a message naming both."""

    def job() -> None:
        pass

    channel = MessageChannel()
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message({"jobs": [1, 2, 3, job]})
    assert info.value.value is job
    assert info.value.path == "message['jobs'][3]"
    assert str(info.value).startswith("message['jobs'][3]: cannot clone a 'function' object (")
    close_ports(channel)


async def test_rule_12_posting_on_a_closed_port_is_a_silent_no_op() -> None:
    """Rule 12: post_message on a closed port returns quietly and nothing arrives."""
    channel = MessageChannel()
    channel.port1.close()
    assert channel.port1.post_message("dropped") is None
    with pytest.raises(trio.EndOfChannel):
        await channel.port2.receive()


async def test_rule_12_posting_on_a_disentangled_port_is_a_silent_no_op() -> None:
    """Rule 12: post_message on a port whose peer closed returns quietly."""
    channel = MessageChannel()
    channel.port2.close()
    assert channel.port1.post_message({"a": [1]}) is None
    assert not channel.port1.statistics().entangled


async def test_rule_12_posting_on_a_closed_port_still_serializes() -> None:
    """Rule 12 (D6): serialization runs before the null-target check, so errors still raise."""
    channel = MessageChannel()
    channel.port1.close()
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message({"callback": print})
    assert info.value.path == "message['callback']"


async def test_rule_12_posting_on_a_closed_port_still_checks_the_transfer_list() -> None:
    """Rule 12 (D6): transfer-list checks still run on a closed port."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    channel.port1.close()
    with pytest.raises(DataCloneError):
        channel.port1.post_message(None, transfer=[buf, buf])
    assert not buf.detached


async def test_rule_12_posting_on_a_closed_port_still_detaches_the_transfer_list() -> None:
    """Rule 12: a post on a closed port that returns has detached every listed object."""
    channel, other, buf = MessageChannel(), MessageChannel(), ArrayBuffer(2)
    channel.port1.close()
    channel.port1.post_message(buf, transfer=[buf, other.port2])
    assert buf.detached
    assert other.port2.statistics().transferred


async def test_rule_12_ports_listed_in_a_post_on_a_closed_port_are_closed() -> None:
    """Rule 12: ports moved by a post on a dead port are closed, so their peers get close."""
    channel, other, closes = MessageChannel(), MessageChannel(), []
    other.port1.onclose = closes.append
    other.port1.start()
    channel.port1.close()
    channel.port1.post_message(None, transfer=[other.port2])
    await trio.testing.wait_all_tasks_blocked()
    assert [event.type for event in closes] == ["close"]
    assert not other.port1.statistics().entangled


async def test_rule_12_posting_on_a_transferred_port_still_detaches_the_transfer_list() -> None:
    """Rule 12 (D9): a post on a transferred port is a no-op that still moves its transfer list."""
    channel, carrier, buf = MessageChannel(), MessageChannel(), ArrayBuffer(1)
    carrier.port1.post_message(None, transfer=[channel.port1])
    channel.port1.post_message(buf, transfer=[buf])
    assert buf.detached
    moved = (await carrier.port2.receive()).ports[0]
    assert moved.statistics().entangled
    assert channel.port2.statistics().queued == 0
    close_ports(channel, carrier)


# -- 13-16: delivery and the event -------------------------------------------------------------


async def test_rule_13_delivery_is_asynchronous() -> None:
    """Rule 13: no handler runs inside post_message; the message arrives at a later step."""
    channel, got = MessageChannel(), []
    channel.port2.onmessage = lambda event: got.append(event.data)
    await trio.testing.wait_all_tasks_blocked()
    channel.port1.post_message("later")
    assert got == []
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["later"]
    close_ports(channel)


async def test_rule_13_a_handler_posting_to_itself_does_not_recurse() -> None:
    """Rule 13: a handler that posts on every message runs once per message, never nested."""
    channel, depth, calls = MessageChannel(), [0], []

    def bounce(event: MessageEvent) -> None:
        depth[0] += 1
        calls.append(depth[0])
        if event.data < 500:
            channel.port1.post_message(event.data + 1)
        depth[0] -= 1

    channel.port2.onmessage = bounce
    channel.port1.post_message(0)
    await trio.testing.wait_all_tasks_blocked()
    assert calls == [1] * 501
    close_ports(channel)


async def test_rule_14_message_goes_to_the_port_holding_the_queue_at_delivery() -> None:
    """Rule 14: a message queued at a port that is then transferred arrives at the new port."""
    channel, carrier = MessageChannel(), MessageChannel()
    channel.port1.post_message("queued at the old object")
    carrier.port1.post_message(None, transfer=[channel.port2])
    moved = (await carrier.port2.receive()).ports[0]
    event = await moved.receive()
    assert event.data == "queued at the old object"
    assert event.target is moved
    close_ports(channel, carrier)


async def test_rule_15_message_event_properties() -> None:
    """Rule 15: the event is a MessageEvent 'message' that neither bubbles nor cancels."""
    channel = MessageChannel()
    channel.port1.post_message(1)
    event = await channel.port2.receive()
    assert isinstance(event, MessageEvent)
    assert event.type == "message"
    assert event.bubbles is False
    assert event.cancelable is False
    close_ports(channel)


async def test_rule_15_target_is_the_receiving_port_never_the_sender() -> None:
    """Rule 15: event.target is the receiving port, for receive() and for handlers alike."""
    channel, events = MessageChannel(), []
    channel.port1.post_message(1)
    received = await channel.port2.receive()
    channel.port2.onmessage = events.append
    channel.port1.post_message(2)
    await trio.testing.wait_all_tasks_blocked()
    for event in (received, *events):
        assert event.target is channel.port2
        assert event.target is not channel.port1
    assert len(events) == 1
    close_ports(channel)


async def test_rule_15_origin_last_event_id_and_source_keep_their_defaults() -> None:
    """Rule 15: origin and last_event_id are '' and source is None."""
    channel = MessageChannel()
    channel.port1.post_message(1)
    event = await channel.port2.receive()
    assert event.origin == ""
    assert event.last_event_id == ""
    assert event.source is None
    close_ports(channel)


async def test_rule_15_a_new_message_event_has_the_standard_defaults() -> None:
    """Rule 15: MessageEvent('message') defaults to data None, no ports, '' origin, no source."""
    event = MessageEvent("message")
    assert event.type == "message"
    assert event.data is None
    assert event.ports == ()
    assert (event.origin, event.last_event_id, event.source) == ("", "", None)
    assert event.target is None


async def test_rule_15_event_attributes_are_read_only() -> None:
    """Rule 15: a MessageEvent's data, ports and target cannot be reassigned."""
    channel = MessageChannel()
    channel.port1.post_message(1)
    event = await channel.port2.receive()
    for name in ("data", "ports", "target", "type"):
        with pytest.raises(AttributeError):
            setattr(event, name, None)
    close_ports(channel)


async def test_rule_16_ports_is_frozen() -> None:
    """Rule 16: event.ports is a tuple: it cannot be appended to or assigned into."""
    channel, other = MessageChannel(), MessageChannel()
    channel.port1.post_message(None, transfer=[other.port1])
    event = await channel.port2.receive()
    assert type(event.ports) is tuple
    assert len(event.ports) == 1
    with pytest.raises(TypeError):
        event.ports[0] = other.port2  # type: ignore[index]
    assert not hasattr(event.ports, "append")
    close_ports(channel, other)


async def test_rule_16_ports_holds_every_transferred_port_in_transfer_order() -> None:
    """Rule 16: event.ports lists every moved port in transfer order, even ones data omits."""
    channel, first, second = MessageChannel(), MessageChannel(), MessageChannel()
    channel.port1.post_message("no ports in data", transfer=[first.port1, second.port1])
    event = await channel.port2.receive()
    assert event.data == "no ports in data"
    assert len(event.ports) == 2
    event.ports[0].post_message("via first")
    event.ports[1].post_message("via second")
    assert (await first.port2.receive()).data == "via first"
    assert (await second.port2.receive()).data == "via second"
    close_ports(channel, first, second)


async def test_rule_16_ports_is_empty_without_transferred_ports() -> None:
    """Rule 16: event.ports is empty with no transfer list, or one holding only buffers."""
    channel, buf = MessageChannel(), ArrayBuffer(1)
    channel.port1.post_message("plain")
    channel.port1.post_message(buf, transfer=[buf])
    assert (await channel.port2.receive()).ports == ()
    assert (await channel.port2.receive()).ports == ()
    close_ports(channel)


# -- 17-19: the data ---------------------------------------------------------------------------


async def test_rule_17_data_is_a_fresh_copy_of_the_graph() -> None:
    """Rule 17: data equals the message but shares no mutable object with it."""
    channel = MessageChannel()
    message = {"list": [1, [2, 3]], "set": {4}}
    channel.port1.post_message(message)
    data = (await channel.port2.receive()).data
    assert data == message
    assert data is not message
    assert data["list"] is not message["list"]
    assert data["list"][1] is not message["list"][1]
    assert data["set"] is not message["set"]
    close_ports(channel)


async def test_rule_17_changing_the_message_after_posting_changes_nothing() -> None:
    """Rule 17: the clone is taken inside post_message, so later edits do not arrive."""
    channel = MessageChannel()
    message = {"n": 1}
    channel.port1.post_message(message)
    message["n"] = 99
    assert (await channel.port2.receive()).data == {"n": 1}
    close_ports(channel)


async def test_rule_17_cycles_and_shared_references_are_preserved() -> None:
    """Rule 17: a cycle and a shared reference in the message are preserved in data."""
    channel = MessageChannel()
    shared: list[int] = [1]
    message: dict[str, object] = {"a": shared, "b": shared}
    message["self"] = message
    channel.port1.post_message(message)
    data = (await channel.port2.receive()).data
    assert data["self"] is data
    assert data["a"] is data["b"]
    assert data["a"] is not shared
    close_ports(channel)


async def test_rule_18_a_listed_port_in_data_is_the_port_in_event_ports() -> None:
    """Rule 18: a transferred port mentioned in data deserializes to the event.ports object."""
    channel, reply = MessageChannel(), MessageChannel()
    channel.port1.post_message({"reply": reply.port2, "again": [reply.port2]}, [reply.port2])
    event = await channel.port2.receive()
    assert event.data["reply"] is event.ports[0]
    assert event.data["again"][0] is event.ports[0]
    assert event.ports[0] is not reply.port2
    close_ports(channel, reply)


async def test_rule_18_a_listed_buffer_in_data_is_the_moved_buffer() -> None:
    """Rule 18: every mention of a transferred buffer in data is the one new buffer."""
    channel, buf = MessageChannel(), ArrayBuffer(b"xyz")
    channel.port1.post_message([buf, {"again": buf}], transfer=[buf])
    data = (await channel.port2.receive()).data
    assert data[0] is data[1]["again"]
    assert data[0] is not buf
    assert bytes(data[0]) == b"xyz"
    close_ports(channel)


async def test_rule_19_a_port_in_data_but_not_in_transfer_is_data_clone_error() -> None:
    """Rule 19: a MessagePort in the message that is not listed raises DataCloneError."""
    channel, other = MessageChannel(), MessageChannel()
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message({"port": other.port1})
    assert info.value.value is other.port1
    assert info.value.path == "message['port']"
    assert other.port1.statistics().entangled
    assert channel.port2.statistics().queued == 0
    close_ports(channel, other)


async def test_rule_19_listing_one_port_does_not_cover_another_in_data() -> None:
    """Rule 19: listing port A does not let an unlisted port B travel in the message."""
    channel, a, b = MessageChannel(), MessageChannel(), MessageChannel()
    with pytest.raises(DataCloneError) as info:
        channel.port1.post_message([a.port1, b.port1], transfer=[a.port1])
    assert info.value.path == "message[1]"
    assert not a.port1.statistics().transferred
    close_ports(channel, a, b)


# -- 20: argument conversion -------------------------------------------------------------------


async def test_rule_20_transfer_none_means_nothing_is_transferred() -> None:
    """Rule 20: transfer=None is the same as an empty transfer list."""
    channel = MessageChannel()
    channel.port1.post_message("x", None)
    channel.port1.post_message("y", transfer=None)
    assert (await channel.port2.receive()).ports == ()
    assert (await channel.port2.receive()).data == "y"
    close_ports(channel)


@pytest.mark.parametrize("transfer", [1, 1.5, object(), True])
async def test_rule_20_a_non_iterable_transfer_is_type_error(transfer: object) -> None:
    """Rule 20: a transfer that is not iterable raises TypeError (not DataCloneError)."""
    channel = MessageChannel()
    with pytest.raises(TypeError) as info:
        channel.port1.post_message("x", transfer=transfer)  # type: ignore[arg-type]
    assert not isinstance(info.value, DataCloneError)
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_rule_20_send_with_a_non_iterable_transfer_is_type_error() -> None:
    """Rule 20: send() with a transfer that is not iterable raises TypeError."""
    channel = MessageChannel()
    with pytest.raises(TypeError) as info:
        await channel.port1.send("x", transfer=1)  # type: ignore[arg-type]
    assert not isinstance(info.value, DataCloneError)
    close_ports(channel)


@pytest.mark.parametrize("make", [list, tuple, iter, lambda items: (i for i in items)])
async def test_rule_20_any_iterable_is_a_transfer_list(make: object) -> None:
    """Rule 20: a list, tuple, iterator or generator all work as the transfer list."""
    channel, buf, other = MessageChannel(), ArrayBuffer(b"q"), MessageChannel()
    channel.port1.post_message(buf, transfer=make([buf, other.port1]))  # type: ignore[operator]
    assert buf.detached
    event = await channel.port2.receive()
    assert bytes(event.data) == b"q"
    assert len(event.ports) == 1
    close_ports(channel, other)


@pytest.mark.parametrize("empty", [[], (), iter(()), {}])
async def test_rule_20_empty_transfer_lists_are_accepted(empty: object) -> None:
    """Rule 20: empty iterables are accepted as 'nothing to transfer'."""
    channel = MessageChannel()
    channel.port1.post_message([1], transfer=empty)  # type: ignore[arg-type]
    event = await channel.port2.receive()
    assert event.data == [1]
    assert event.ports == ()
    close_ports(channel)
