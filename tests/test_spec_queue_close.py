"""Conformance: the port message queue, dispatch, close() and the close event.

Covers spec sections D (rules 36-40), E (41-45), F (46-50), H (54, 56) and I (60), our
decisions D2 (a closing port drops its queue), D5 (the close event) and D8 (onmessage = None),
and how handlers are called (plain or async, errors logged, registration order).

Not tested: rule 53 (``messageerror``) because deserialization cannot fail inside one trio
runtime, only behind a relay; rule 48's "document destroyed" trigger and D5's "owner actor
stops" (no documents, no actors yet); rules 51, 52 and 55 state browser status, Node's
behaviour and the absence of a guarantee; rules 57-59 need windows, iframes or workers.
"""

from __future__ import annotations

import gc

import pytest
import trio
import trio.testing
from _helpers import close_ports, drops_entangled_ports
from hypothesis import given
from hypothesis import strategies as st

from actors import Event, MessageChannel, MessageEvent, MessagePort

# -- D. The port message queue and start() -----------------------------------------------------


async def test_rule_36_a_listener_without_start_never_receives(autojump_clock: object) -> None:
    """Rule 36: with only add_event_listener and no start(), nothing is delivered, ever."""
    channel, got = MessageChannel(), []
    channel.port2.add_event_listener("message", got.append)
    channel.port1.post_message("waits")
    await trio.sleep(10)
    assert got == []
    assert channel.port2.statistics().queued == 1
    close_ports(channel)


async def test_rule_37_start_dispatches_queued_messages_in_order() -> None:
    """Rule 37: start() dispatches the messages queued before it, in the order posted."""
    channel, got = MessageChannel(), []
    channel.port2.add_event_listener("message", lambda event: got.append(event.data))
    for n in range(5):
        channel.port1.post_message(n)
    channel.port2.start()
    await trio.testing.wait_all_tasks_blocked()
    assert got == [0, 1, 2, 3, 4]
    close_ports(channel)


async def test_rule_37_start_is_idempotent() -> None:
    """Rule 37: calling start() again does nothing: each message is still dispatched once."""
    channel, got = MessageChannel(), []
    channel.port2.add_event_listener("message", lambda event: got.append(event.data))
    channel.port2.start()
    channel.port1.post_message(1)
    channel.port2.start()
    await trio.testing.wait_all_tasks_blocked()
    channel.port2.start()
    channel.port1.post_message(2)
    await trio.testing.wait_all_tasks_blocked()
    assert got == [1, 2]
    close_ports(channel)


async def test_rule_37_start_on_a_closed_port_does_nothing() -> None:
    """Rule 37: start() on a closed port neither raises nor starts anything."""
    channel = MessageChannel()
    channel.port2.close()
    channel.port2.start()
    assert not channel.port2.statistics().started


async def test_rule_38_setting_onmessage_starts_the_queue() -> None:
    """Rule 38: the first onmessage assignment starts the queue, as start() would."""
    channel, got = MessageChannel(), []
    channel.port1.post_message("queued")
    channel.port2.onmessage = lambda event: got.append(event.data)
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["queued"]
    close_ports(channel)


async def test_rule_38_onmessageerror_and_onclose_do_not_start_the_queue() -> None:
    """Rule 38 (D1): onmessageerror and onclose do not start the queue, so no close fires."""
    channel, closes = MessageChannel(), []
    channel.port2.onmessageerror = lambda event: None
    channel.port2.onclose = closes.append
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    assert closes == []
    assert not channel.port2.statistics().started


async def test_d8_onmessage_none_does_not_start_the_queue() -> None:
    """D8: assigning onmessage = None does not start the queue."""
    channel = MessageChannel()
    channel.port2.onmessage = None
    channel.port1.post_message("x")
    await trio.testing.wait_all_tasks_blocked()
    assert not channel.port2.statistics().started
    assert channel.port2.statistics().queued == 1
    assert channel.port2.onmessage is None
    close_ports(channel)


async def test_rule_39_a_replaced_onmessage_gets_only_later_messages() -> None:
    """Rule 39: each message is dispatched once; a replacement handler gets only later ones."""
    channel, first, second = MessageChannel(), [], []

    def replace(event: MessageEvent) -> None:
        first.append(event.data)
        channel.port2.onmessage = lambda later: second.append(later.data)

    channel.port2.onmessage = replace
    channel.port1.post_message("a")
    channel.port1.post_message("b")
    await trio.testing.wait_all_tasks_blocked()
    assert (first, second) == (["a"], ["b"])
    close_ports(channel)


async def test_rule_39_one_message_goes_to_handlers_or_to_receive_never_both() -> None:
    """Rule 39: a message goes to the handlers present at dispatch, otherwise to receive()."""
    channel, got = MessageChannel(), []
    channel.port1.post_message("to receive")
    assert (await channel.port2.receive()).data == "to receive"
    channel.port2.onmessage = lambda event: got.append(event.data)
    channel.port1.post_message("to the handler")
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["to the handler"]
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_rule_40_an_endless_ping_pong_does_not_starve_other_tasks() -> None:
    """Rule 40: handlers that post back forever leave room for a task that only checkpoints."""
    channel, rallies = MessageChannel(), [0]

    def bounce(event: MessageEvent) -> None:
        rallies[0] += 1
        event.target.post_message(event.data)  # type: ignore[union-attr]

    channel.port1.onmessage = bounce
    channel.port2.onmessage = bounce
    channel.port1.post_message("ball")
    for _ in range(200):
        await trio.lowlevel.checkpoint()
    assert rallies[0] > 10  # the rally really was going on meanwhile
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    stopped_at = rallies[0]
    await trio.testing.wait_all_tasks_blocked()
    assert rallies[0] == stopped_at


async def test_rule_40_a_flood_of_messages_lets_other_tasks_run() -> None:
    """Rule 40: a long burst of messages to one handler does not hold the other tasks back."""
    channel, handled, seen_by_other = MessageChannel(), [0], []
    channel.port2.onmessage = lambda event: handled.__setitem__(0, handled[0] + 1)
    for n in range(5000):
        channel.port1.post_message(n)

    async def other() -> None:
        for _ in range(3):
            await trio.lowlevel.checkpoint()
        seen_by_other.append(handled[0])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
    await trio.testing.wait_all_tasks_blocked()
    assert handled[0] == 5000
    assert seen_by_other[0] < 5000
    close_ports(channel)


# -- E. close() --------------------------------------------------------------------------------


async def test_rule_41_close_is_idempotent_and_never_raises() -> None:
    """Rule 41: close() may be called repeatedly, and on a port whose peer already closed."""
    channel = MessageChannel()
    channel.port1.close()
    channel.port1.close()
    channel.port2.close()
    channel.port2.close()
    await channel.port2.aclose()
    assert channel.port1.statistics().closed
    assert channel.port2.statistics().closed


async def test_rule_41_close_disentangles_both_ports() -> None:
    """Rule 41: after close() neither the port nor its former partner is entangled."""
    channel = MessageChannel()
    channel.port1.close()
    assert not channel.port1.statistics().entangled
    assert not channel.port2.statistics().entangled


async def test_rule_42_messages_posted_from_a_closed_port_are_dropped() -> None:
    """Rule 42: after A.close(), what A posts never reaches B."""
    channel, got, closes = MessageChannel(), [], []
    channel.port2.onmessage = lambda event: got.append(event.data)
    channel.port2.onclose = closes.append
    channel.port1.close()
    channel.port1.post_message("from the closed port")
    await trio.testing.wait_all_tasks_blocked()
    assert got == []
    assert len(closes) == 1


async def test_rule_42_messages_posted_to_a_closed_port_are_dropped() -> None:
    """Rule 42: after A.close(), what its former partner B posts goes nowhere."""
    channel = MessageChannel()
    channel.port1.close()
    channel.port2.post_message("to the closed port")
    await trio.testing.wait_all_tasks_blocked()
    assert channel.port1.statistics().queued == 0
    assert channel.port2.statistics().queued == 0


async def test_rule_43_messages_posted_before_the_sender_closes_are_delivered() -> None:
    """Rule 43: messages already queued at the receiver when the sender closes still arrive."""
    channel = MessageChannel()
    channel.port1.post_message("one")
    channel.port1.post_message("two")
    channel.port1.close()
    assert [event.data async for event in channel.port2] == ["one", "two"]


async def test_rule_43_handlers_get_in_flight_messages_then_close() -> None:
    """Rule 43 (D5): a handled port gets the messages sent before the close, then close."""
    channel, log = MessageChannel(), []
    channel.port2.onmessage = lambda event: log.append(event.data)
    channel.port2.onclose = lambda event: log.append(event.type)
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    assert log == [1, 2, "close"]


async def test_rule_44_d2_closing_in_a_handler_drops_the_rest_of_the_queue() -> None:
    """Rule 44 (D2): a port that closes itself in onmessage gets none of its queued messages."""
    channel, got = MessageChannel(), []

    def first_only(event: MessageEvent) -> None:
        got.append(event.data)
        channel.port2.close()

    channel.port1.post_message("a")
    channel.port1.post_message("b")
    channel.port1.post_message("c")
    channel.port2.onmessage = first_only
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["a"]


async def test_d2_closing_in_an_async_handler_drops_the_rest_of_the_queue() -> None:
    """D2: a port that closes itself inside an async handler gets none of its queued messages."""
    channel, got = MessageChannel(), []

    async def first_only(event: MessageEvent) -> None:
        got.append(event.data)
        await trio.lowlevel.checkpoint()
        channel.port2.close()

    for n in range(3):
        channel.port1.post_message(n)
    channel.port2.onmessage = first_only
    await trio.testing.wait_all_tasks_blocked()
    assert got == [0]


async def test_d2_ports_inside_dropped_messages_are_closed() -> None:
    """D2: ports carried by messages a closing port drops are closed, so their peers end."""
    channel, inner, closes = MessageChannel(), MessageChannel(), []
    inner.port1.onclose = closes.append
    inner.port1.start()
    channel.port1.post_message("carries a port", transfer=[inner.port2])
    channel.port2.close()
    await trio.testing.wait_all_tasks_blocked()
    assert [event.type for event in closes] == ["close"]
    assert not inner.port1.statistics().entangled


async def test_d2_a_closed_port_drops_messages_queued_at_it() -> None:
    """D2: the messages queued at a port are gone once it closes: its queue reads empty."""
    channel = MessageChannel()
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    assert channel.port2.statistics().queued == 2
    channel.port2.close()
    assert channel.port2.statistics().queued == 0


async def test_rule_45_a_closed_ports_partner_can_move_but_talks_to_nobody() -> None:
    """Rule 45: the partner of a closed port can be transferred; its copy posts into the void."""
    channel, carrier = MessageChannel(), MessageChannel()
    channel.port1.close()
    carrier.port1.post_message(None, transfer=[channel.port2])
    moved = (await carrier.port2.receive()).ports[0]
    assert not moved.statistics().entangled
    assert moved.post_message("nobody hears this") is None
    with pytest.raises(trio.EndOfChannel):
        await moved.receive()
    close_ports(channel, carrier)


# -- F. The close event (D5) -------------------------------------------------------------------


async def test_rule_46_onclose_is_a_handler_attribute() -> None:
    """Rule 46: onclose exists, starts as None, holds a callable, and refuses anything else."""
    channel = MessageChannel()
    port = channel.port1
    assert port.onclose is None

    def handler(event: Event) -> None:
        pass

    port.onclose = handler
    assert port.onclose is handler
    with pytest.raises(TypeError):
        port.onclose = "not callable"  # type: ignore[assignment]
    port.onclose = None
    assert port.onclose is None
    close_ports(channel)


async def test_rule_47_close_fires_on_the_other_port_only() -> None:
    """Rule 47 (D5): close() fires close at the partner, never at the port that closed."""
    channel, at1, at2 = MessageChannel(), [], []
    channel.port1.onclose = at1.append
    channel.port2.onclose = at2.append
    channel.port1.start()
    channel.port2.start()
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    assert at1 == []
    assert len(at2) == 1


async def test_rule_47_the_close_event_is_a_plain_event_at_the_partner() -> None:
    """Rule 47: the close event is a plain Event of type 'close' whose target is the partner."""
    channel, events = MessageChannel(), []
    channel.port2.add_event_listener("close", events.append)
    channel.port2.start()
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    [event] = events
    assert type(event) is Event
    assert event.type == "close"
    assert event.target is channel.port2
    assert (event.bubbles, event.cancelable) == (False, False)


async def test_rule_47_close_fires_once() -> None:
    """Rule 47: however often the peer is closed, the close event fires once."""
    channel, closes = MessageChannel(), []
    channel.port2.onclose = closes.append
    channel.port2.start()
    channel.port1.close()
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1


@drops_entangled_ports
async def test_rule_48_d5_close_fires_when_the_peer_is_garbage_collected() -> None:
    """Rule 48 (D5): a peer collected while entangled disentangles, firing close here."""
    channel, closes = MessageChannel(), []
    survivor = channel.port1
    survivor.onclose = closes.append
    survivor.start()
    del channel
    gc.collect()
    await trio.testing.wait_all_tasks_blocked()
    assert [event.type for event in closes] == ["close"]
    assert not survivor.statistics().entangled
    survivor.close()


@drops_entangled_ports
async def test_rule_48_d5_a_peer_in_a_reference_cycle_closes_on_gc_collect() -> None:
    """Rule 48 (D5): a peer kept only by a reference cycle fires close once gc.collect() runs."""
    channel, closes = MessageChannel(), []
    survivor = channel.port1
    survivor.onclose = closes.append
    survivor.start()
    cycle: list[object] = [channel.port2]
    cycle.append(cycle)
    del channel, cycle
    gc.collect()
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1
    survivor.close()


@drops_entangled_ports
async def test_rule_48_d5_ports_in_a_collected_ports_queue_are_closed() -> None:
    """Rule 48 (D2, D5): collecting a port drops its queue and closes the ports inside it."""
    channel, inner, closes = MessageChannel(), MessageChannel(), []
    inner.port1.onclose = closes.append
    inner.port1.start()
    channel.port1.post_message(None, transfer=[inner.port2])
    del channel
    gc.collect()
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1
    inner.port1.close()


@drops_entangled_ports
async def test_rule_48_d5_a_received_port_nobody_keeps_closes_its_partner() -> None:
    """Rule 48 (D5): a port that arrives in a message and is dropped is collected: close fires."""
    channel, other, closes = MessageChannel(), MessageChannel(), []
    other.port1.onclose = closes.append
    other.port1.start()
    channel.port1.post_message(None, transfer=[other.port2])
    event = await channel.port2.receive()
    assert len(event.ports) == 1
    del event
    gc.collect()
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1
    close_ports(channel, other)


async def test_rule_47_close_reaches_a_port_closed_while_in_flight() -> None:
    """Rule 47: a peer closed while the port is being transferred fires close at the new port."""
    channel, carrier, closes = MessageChannel(), MessageChannel(), []
    channel.port1.post_message("before the close")
    carrier.port1.post_message(None, transfer=[channel.port2])
    channel.port1.close()
    moved = (await carrier.port2.receive()).ports[0]
    moved.onmessage = lambda event: closes.append(event.data)
    moved.onclose = lambda event: closes.append((event.type, event.target is moved))
    await trio.testing.wait_all_tasks_blocked()
    assert closes == ["before the close", ("close", True)]
    close_ports(channel, carrier)


async def test_rule_50_the_close_event_is_not_fired_inside_close() -> None:
    """Rule 50: close() returns before the partner's close handler runs; it runs later."""
    channel, closes = MessageChannel(), []
    channel.port2.onclose = closes.append
    channel.port2.start()
    await trio.testing.wait_all_tasks_blocked()
    channel.port1.close()
    assert closes == []
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1


async def test_d5_close_waits_for_the_queue_to_be_started() -> None:
    """D5: close goes through the queue, so it fires only once the port is started."""
    channel, closes = MessageChannel(), []
    channel.port2.onclose = closes.append
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    assert closes == []
    channel.port2.start()
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1


async def test_d5_close_set_after_the_peer_closed_still_fires() -> None:
    """D5: an onclose set on a started port after the peer closed still gets the close event."""
    channel, closes = MessageChannel(), []
    channel.port2.start()
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    channel.port2.onclose = closes.append
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1


async def test_d5_close_fires_after_receive_has_taken_every_earlier_message() -> None:
    """D5: on a receive() port, close fires only after the earlier messages were received."""
    channel, closes = MessageChannel(), []
    channel.port2.onclose = closes.append
    channel.port1.post_message("first")
    channel.port1.close()
    channel.port2.start()
    await trio.testing.wait_all_tasks_blocked()
    assert closes == []
    assert [event.data async for event in channel.port2] == ["first"]
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1


async def test_d5_the_closing_port_gets_no_close_even_with_listeners() -> None:
    """D5: the port that called close() gets no close event from its own close."""
    channel, closes = MessageChannel(), []
    channel.port1.onclose = closes.append
    channel.port1.onmessage = lambda event: None
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    assert closes == []


# -- Handlers ----------------------------------------------------------------------------------


async def test_plain_and_async_handlers_both_receive() -> None:
    """Handlers may be plain functions or async functions; both get each message."""
    channel, got = MessageChannel(), []

    async def async_handler(event: MessageEvent) -> None:
        await trio.lowlevel.checkpoint()
        got.append(("async", event.data))

    channel.port2.add_event_listener("message", lambda event: got.append(("plain", event.data)))
    channel.port2.add_event_listener("message", async_handler)
    channel.port2.start()
    channel.port1.post_message(1)
    await trio.testing.wait_all_tasks_blocked()
    assert got == [("plain", 1), ("async", 1)]
    close_ports(channel)


async def test_an_async_handler_finishes_before_the_next_event(autojump_clock: object) -> None:
    """An async handler is awaited before the next listener and the next event are dispatched."""
    channel, log = MessageChannel(), []

    async def slow(event: MessageEvent) -> None:
        log.append(f"start {event.data}")
        await trio.sleep(1)
        log.append(f"end {event.data}")

    channel.port2.add_event_listener("message", slow)
    channel.port2.add_event_listener("message", lambda event: log.append(f"next {event.data}"))
    channel.port2.start()
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    await trio.sleep(5)
    assert log == ["start 1", "end 1", "next 1", "start 2", "end 2", "next 2"]
    close_ports(channel)


async def test_a_raising_handler_is_logged_and_dispatch_continues(
    logs: list[dict[str, object]],
) -> None:
    """A handler that raises is logged as event_listener_failed and the others still run."""
    channel, got = MessageChannel(), []

    def fragile(event: MessageEvent) -> None:
        if event.data == 1:
            raise ValueError("cannot handle 1")
        got.append(("fragile", event.data))

    channel.port2.add_event_listener("message", fragile)
    channel.port2.add_event_listener("message", lambda event: got.append(("sturdy", event.data)))
    channel.port2.start()
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    await trio.testing.wait_all_tasks_blocked()
    assert got == [("sturdy", 1), ("fragile", 2), ("sturdy", 2)]
    failures = [entry for entry in logs if entry["event"] == "event_listener_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "error"
    assert failures[0]["event_type"] == "message"
    close_ports(channel)


async def test_a_raising_async_handler_is_logged_too(logs: list[dict[str, object]]) -> None:
    """An async handler that raises after awaiting is logged and dispatch goes on."""
    channel, got = MessageChannel(), []

    async def fragile(event: MessageEvent) -> None:
        await trio.lowlevel.checkpoint()
        if event.data == 1:
            raise KeyError(event.data)
        got.append(event.data)

    channel.port2.onmessage = fragile
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    await trio.testing.wait_all_tasks_blocked()
    assert got == [2]
    assert [entry["event"] for entry in logs].count("event_listener_failed") == 1
    close_ports(channel)


async def test_a_raising_close_handler_is_logged(logs: list[dict[str, object]]) -> None:
    """A close handler that raises is logged as event_listener_failed with event_type close."""
    channel = MessageChannel()

    def broken(event: Event) -> None:
        raise RuntimeError("broken close handler")

    channel.port2.onclose = broken
    channel.port2.start()
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    failures = [entry for entry in logs if entry["event"] == "event_listener_failed"]
    assert [entry["event_type"] for entry in failures] == ["close"]


async def test_listeners_run_in_registration_order_with_onmessage_in_its_place() -> None:
    """Listeners run in registration order; onmessage keeps its place when replaced."""
    channel, order = MessageChannel(), []
    port = channel.port2
    port.add_event_listener("message", lambda event: order.append("a"))
    port.onmessage = lambda event: order.append("h1")
    port.add_event_listener("message", lambda event: order.append("b"))
    port.onmessage = lambda event: order.append("h2")
    channel.port1.post_message(None)
    await trio.testing.wait_all_tasks_blocked()
    assert order == ["a", "h2", "b"]
    close_ports(channel)


async def test_adding_the_same_listener_twice_calls_it_once() -> None:
    """Adding one listener twice for a type registers it once."""
    channel, got = MessageChannel(), []
    channel.port2.add_event_listener("message", got.append)
    channel.port2.add_event_listener("message", got.append)
    assert channel.port2.statistics().message_handlers == 1
    channel.port2.start()
    channel.port1.post_message(1)
    await trio.testing.wait_all_tasks_blocked()
    assert len(got) == 1
    close_ports(channel)


async def test_a_once_listener_is_called_only_for_the_first_event() -> None:
    """A listener added with once=True runs for one event and is then removed."""
    channel, once, always = MessageChannel(), [], []
    channel.port2.add_event_listener("message", lambda event: once.append(event.data), once=True)
    channel.port2.add_event_listener("message", lambda event: always.append(event.data))
    channel.port2.start()
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    await trio.testing.wait_all_tasks_blocked()
    assert (once, always) == ([1], [1, 2])
    close_ports(channel)


async def test_a_removed_listener_is_not_called() -> None:
    """remove_event_listener stops calls; removing an unknown listener does nothing."""
    channel, removed, kept = MessageChannel(), [], []
    channel.port2.add_event_listener("message", removed.append)
    channel.port2.add_event_listener("message", kept.append)
    channel.port2.remove_event_listener("message", removed.append)
    channel.port2.remove_event_listener("message", print)
    channel.port2.start()
    channel.port1.post_message(1)
    await trio.testing.wait_all_tasks_blocked()
    assert (len(removed), len(kept)) == (0, 1)
    close_ports(channel)


async def test_a_listener_removed_during_dispatch_is_skipped() -> None:
    """A listener removed by an earlier listener of the same event is not called for it."""
    channel, called = MessageChannel(), []

    def second(event: MessageEvent) -> None:
        called.append("second")

    def first(event: MessageEvent) -> None:
        called.append("first")
        channel.port2.remove_event_listener("message", second)

    channel.port2.add_event_listener("message", first)
    channel.port2.add_event_listener("message", second)
    channel.port2.start()
    channel.port1.post_message(None)
    await trio.testing.wait_all_tasks_blocked()
    assert called == ["first"]
    close_ports(channel)


async def test_non_callable_handlers_are_refused() -> None:
    """A listener or on* handler that is not callable raises TypeError."""
    channel = MessageChannel()
    port = channel.port1
    with pytest.raises(TypeError):
        port.add_event_listener("message", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        port.onmessage = "nope"  # type: ignore[assignment]
    assert port.statistics().message_handlers == 0
    assert not port.statistics().started
    close_ports(channel)


# -- H. Ordering -------------------------------------------------------------------------------


@given(st.lists(st.integers() | st.text(max_size=5), max_size=30))
async def test_rule_54_fifo_in_each_direction(messages: list[object]) -> None:
    """Rule 54: messages arrive in the order they were posted, separately in each direction."""
    channel = MessageChannel()
    for message in messages:
        channel.port1.post_message(message)
        channel.port2.post_message(("back", message))
    forward = [(await channel.port2.receive()).data for _ in messages]
    backward = [(await channel.port1.receive()).data for _ in messages]
    assert forward == messages
    assert backward == [("back", message) for message in messages]
    close_ports(channel)


async def test_rule_54_fifo_with_a_handler() -> None:
    """Rule 54: a handler sees one direction's messages in the order they were posted."""
    channel, got = MessageChannel(), []
    channel.port2.onmessage = lambda event: got.append(event.data)
    for n in range(300):
        channel.port1.post_message(n)
    await trio.testing.wait_all_tasks_blocked()
    assert got == list(range(300))
    close_ports(channel)


async def test_rule_56_order_kept_through_a_late_start() -> None:
    """Rule 56: messages queued before start() come out in posting order, before later ones."""
    channel, got = MessageChannel(), []
    for n in range(3):
        channel.port1.post_message(n)
    channel.port2.add_event_listener("message", lambda event: got.append(event.data))
    channel.port2.start()
    channel.port1.post_message(3)
    await trio.testing.wait_all_tasks_blocked()
    assert got == [0, 1, 2, 3]
    close_ports(channel)


# -- I. When the owner goes away ---------------------------------------------------------------


async def test_rule_60_a_gone_peer_is_noticed_only_through_close() -> None:
    """Rule 60: when the peer goes, posting to it is silent; the close event is the only sign."""
    channel, log = MessageChannel(), []
    port: MessagePort = channel.port1
    port.onmessage = lambda event: log.append(("message", event.data))
    port.onclose = lambda event: log.append(("close", None))
    channel.port2.close()
    assert port.post_message("into the void") is None
    await trio.testing.wait_all_tasks_blocked()
    assert log == [("close", None)]


async def test_a_message_handed_to_a_blocked_receive_survives_a_close() -> None:
    """A receive() that was handed a message has completed: close() does not take it back
    (D2 drops what is *queued*; as trio's memory channels)."""
    channel = MessageChannel()
    got: list[object] = []

    async def receiver() -> None:
        got.append((await channel.port2.receive()).data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("handed over")
        channel.port2.close()
    assert got == ["handed over"]


async def test_repr_counts_messages_as_statistics_does() -> None:
    """A port's repr shows the messages it holds; the close marker behind them is not one."""
    channel = MessageChannel()
    channel.port1.post_message("a")
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    assert channel.port2.statistics().queued == 1
    assert repr(channel.port2).endswith("disentangled queued=1>")
    assert (await channel.port2.receive()).data == "a"
    assert repr(channel.port2).endswith("queued=0>")
    assert channel.port2.statistics().queued == 0
