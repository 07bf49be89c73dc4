"""BroadcastChannel: the standard's rules 62-68 (spec part K) and its web-platform-tests."""

from __future__ import annotations

import gc
import weakref

import pytest
import trio
import trio.testing

import actors
from actors import BroadcastChannel, InvalidStateError, MessageEvent


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


async def test_the_name_is_converted_with_str() -> None:
    """Rule 62: ``name`` goes through ``str``."""
    assert BroadcastChannel(123).name == "123"
    assert BroadcastChannel(None).name == "None"
    assert BroadcastChannel("room").name == "room"


async def test_no_echo_but_other_objects_of_the_name_receive() -> None:
    """Rule 64: the sender is left out; every other open channel of the name receives."""
    a, b, c = (BroadcastChannel("x") for _ in range(3))
    other = BroadcastChannel("y")
    got: list[str] = []
    for name, channel in (("a", a), ("b", b), ("c", c), ("other", other)):
        channel.onmessage = lambda event, name=name: got.append(name)
    a.post_message("hi")
    await settle()
    assert got == ["b", "c"]


async def test_delivery_follows_creation_order() -> None:
    """WPT basics: for c1, c2, c3, posts arrive oldest channel first, in post order."""
    c1, c2, c3 = BroadcastChannel("o"), BroadcastChannel("o"), BroadcastChannel("o")
    log: list[str] = []
    for label, channel in (("c1", c1), ("c2", c2), ("c3", c3)):
        channel.onmessage = lambda event, label=label: log.append(f"{label}<-{event.data}")
    c1.post_message("from c1")
    c3.post_message("from c3")
    c2.post_message("done")
    await settle()
    assert log == [
        "c2<-from c1",
        "c3<-from c1",
        "c1<-from c3",
        "c2<-from c3",
        "c1<-done",
        "c3<-done",
    ]


async def test_a_channel_made_after_the_post_gets_nothing() -> None:
    """Rule 64: the destinations are fixed when ``post_message`` is called."""
    sender, early = BroadcastChannel("late"), BroadcastChannel("late")
    sender.post_message("first")
    late = BroadcastChannel("late")
    assert (await early.receive()).data == "first"
    sender.post_message("second")
    assert (await late.receive()).data == "second"
    assert (await early.receive()).data == "second"


async def test_each_destination_gets_its_own_clone() -> None:
    """Rule 65: separate clones; mutating one changes nobody else's."""
    sender, r1, r2 = BroadcastChannel("c"), BroadcastChannel("c"), BroadcastChannel("c")
    message = {"items": [1, 2]}
    sender.post_message(message)
    one, two = (await r1.receive()).data, (await r2.receive()).data
    one["items"].append(3)
    assert two == {"items": [1, 2]}
    assert message == {"items": [1, 2]}
    assert one is not message
    assert two is not message


async def test_posting_after_close_is_invalid_state_even_with_bad_data() -> None:
    """Rule 63: the closed check comes before cloning; it is trio's ClosedResourceError."""
    channel = BroadcastChannel("closed")
    channel.close()
    with pytest.raises(InvalidStateError):
        channel.post_message(trio.Lock())
    assert issubclass(InvalidStateError, trio.ClosedResourceError)


async def test_an_uncloneable_message_reaches_nobody() -> None:
    """Rule 63: DataCloneError, and no channel gets anything."""
    sender, receiver = BroadcastChannel("bad"), BroadcastChannel("bad")
    with pytest.raises(actors.DataCloneError):
        sender.post_message({"lock": trio.Lock()})
    sender.post_message("next")
    assert (await receiver.receive()).data == "next"


async def test_close_is_idempotent_and_drops_what_is_pending() -> None:
    """Rules 66-67: a channel closed after a post receives none of the pending messages."""
    sender, receiver = BroadcastChannel("p"), BroadcastChannel("p")
    got: list[object] = []
    receiver.onmessage = lambda event: got.append(event.data)
    sender.post_message(1)
    receiver.close()
    receiver.close()
    await settle()
    assert got == []
    with pytest.raises(trio.ClosedResourceError):
        await receiver.receive()


async def test_closing_inside_a_handler_stops_later_queued_messages() -> None:
    """WPT basics: ``close()`` in ``onmessage`` prevents the rest from being delivered."""
    sender, receiver = BroadcastChannel("h"), BroadcastChannel("h")
    got: list[object] = []

    def handler(event: MessageEvent) -> None:
        got.append(event.data)
        receiver.close()

    receiver.onmessage = handler
    for i in range(3):
        sender.post_message(i)
    await settle()
    assert got == [0]


async def test_closing_one_and_making_another_during_delivery() -> None:
    """WPT basics: membership may change inside a handler."""
    sender, first = BroadcastChannel("m"), BroadcastChannel("m")
    made: list[BroadcastChannel] = []

    def handler(event: MessageEvent) -> None:
        first.close()
        made.append(BroadcastChannel("m"))

    first.onmessage = handler
    sender.post_message("one")
    await settle()
    sender.post_message("two")
    assert (await made[0].receive()).data == "two"


async def test_listeners_receive_without_start() -> None:
    """Rule 67: no ``start()``; ``add_event_listener`` works at once."""
    sender, receiver = BroadcastChannel("l"), BroadcastChannel("l")
    got: list[MessageEvent] = []
    receiver.add_event_listener("message", got.append)
    sender.post_message("x")
    await settle()
    [event] = got
    assert event.target is receiver
    assert event.source is None
    assert event.origin == ""
    assert not hasattr(receiver, "start")


async def test_trio_face_receive_async_for_and_async_with() -> None:
    """``receive()`` and ``async for``; ``async with`` closes; blocked receivers are woken."""
    sender = BroadcastChannel("t")
    async with BroadcastChannel("t") as receiver:
        sender.post_message(1)
        sender.post_message(2)
        seen = []
        async for event in receiver:
            seen.append(event.data)
            if len(seen) == 2:
                break
        assert seen == [1, 2]

        async def blocked() -> None:
            with pytest.raises(trio.ClosedResourceError):
                await receiver.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked)
            await settle()
            receiver.close()
    receiver.onmessage = lambda event: None
    with pytest.raises(trio.ClosedResourceError):
        await receiver.receive()


async def test_receive_refuses_while_handlers_get_the_messages() -> None:
    """As ports: a channel with message handlers is busy for ``receive()``."""
    channel = BroadcastChannel("busy")
    channel.onmessage = lambda event: None
    with pytest.raises(trio.BusyResourceError, match="BroadcastChannel"):
        await channel.receive()


async def test_an_open_channel_with_listeners_is_kept_alive() -> None:
    """Rule 67: while open with message listeners it is not collected; otherwise it may be."""
    got: list[object] = []
    listening = BroadcastChannel("gc")
    listening.onmessage = lambda event: got.append(event.data)
    silent = BroadcastChannel("gc")
    silent_ref = weakref.ref(silent)
    del listening, silent
    gc.collect()
    assert silent_ref() is None
    BroadcastChannel("gc").post_message("still here")
    await settle()
    assert got == ["still here"]


def test_outside_a_trio_run_it_is_an_error() -> None:
    """The name's scope is the trio run: there is none outside one."""
    with pytest.raises(RuntimeError, match="inside a trio run"):
        BroadcastChannel("nowhere")


async def test_a_channel_an_actor_made_closes_when_its_incarnation_ends() -> None:
    """Like the ports it makes, an actor's BroadcastChannel is its own: no handler of a dead
    incarnation hears anything, and nothing outlives the supervisor."""
    heard: list[tuple[int, object]] = []

    async def listener() -> None:
        n = actors.current_actor().incarnation
        channel = BroadcastChannel("news")
        channel.onmessage = lambda event: heard.append((n, event.data))
        if n == 1:
            raise RuntimeError("crash")
        await trio.sleep_forever()

    news = BroadcastChannel("news")
    async with actors.open_supervisor() as sup:
        sup.spawn(listener)
        await settle()
        news.post_message("one")
        await settle()
        sup.cancel()
    news.post_message("two")
    await settle()
    assert heard == [(2, "one")]


async def test_receive_nowait_takes_what_has_arrived_then_would_block() -> None:
    """receive_nowait(): the messages that arrived, in order, then trio.WouldBlock (never
    EndOfChannel: a broadcast channel has no peer to lose); closed: ClosedResourceError."""
    a, b = BroadcastChannel("nowait"), BroadcastChannel("nowait")
    with pytest.raises(trio.WouldBlock):
        b.receive_nowait()
    a.post_message(1)
    a.post_message(2)
    assert [b.receive_nowait().data for _ in range(2)] == [1, 2]
    with pytest.raises(trio.WouldBlock):
        b.receive_nowait()
    a.close()
    with pytest.raises(trio.WouldBlock):
        b.receive_nowait()
    b.close()
    with pytest.raises(trio.ClosedResourceError):
        b.receive_nowait()
