"""Port ownership: slot ports survive restarts; everything an actor owns closes when it ends.

The death notice reaches each peer through ``onclose`` and through ``EndOfChannel``.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from _helpers import close_ports

import actors
from actors import MessageChannel, MessageEvent, MessagePort, Restart, open_supervisor


class Boom(Exception):
    """The crash the tests' actors raise."""


async def test_a_restart_keeps_slot_ports_open_and_their_queue() -> None:
    """Messages queued when a child crashes go to the next incarnation; no close between."""
    channel = MessageChannel()
    closes: list[object] = []
    channel.port1.onclose = closes.append
    channel.port1.start()  # the close event goes through the port's queue (D5)
    got: list[tuple[int, object]] = []
    crash = trio.Event()

    async def worker(port: MessagePort) -> None:
        n = actors.current_actor().incarnation
        if n == 1:
            await crash.wait()  # never started its port: everything stays queued
            raise Boom
        async for event in port:
            got.append((n, event.data))

    async with open_supervisor() as sup:
        sup.spawn(worker, channel.port2)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(3):
            channel.port1.post_message(i)
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        assert got == [(2, 0), (2, 1), (2, 2)]
        assert closes == []
        sup.cancel()
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1  # stopped for good: now the peer hears of it


async def test_the_dead_incarnations_listeners_never_fire_again() -> None:
    """A restart moves slot ports to fresh objects: old handlers and objects are detached."""
    channel = MessageChannel()
    heard: list[tuple[int, object]] = []
    kept: list[MessagePort] = []
    crash = trio.Event()

    async def worker(port: MessagePort) -> None:
        n = actors.current_actor().incarnation
        kept.append(port)
        if n == 1:
            port.onmessage = lambda event: heard.append((1, event.data))
            await crash.wait()
            raise Boom
        await trio.sleep_forever()  # the second never starts its port

    async with open_supervisor() as sup:
        sup.spawn(worker, channel.port2)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("before")
        await trio.testing.wait_all_tasks_blocked()
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("after")
        await trio.testing.wait_all_tasks_blocked()
        first, second = kept
        assert heard == [(1, "before")]
        assert first.statistics().transferred
        assert second.statistics().queued == 1
        assert not second.statistics().started
        sup.cancel()


async def test_a_slot_port_transferred_away_stays_gone_for_later_incarnations() -> None:
    """An incarnation that gives its slot port away leaves the next one a detached port."""
    channel, elsewhere = MessageChannel(), MessageChannel()
    states: list[actors.MessagePortStatistics] = []

    async def worker(port: MessagePort, out: MessagePort) -> None:
        states.append(port.statistics())
        if actors.current_actor().incarnation == 1:
            out.post_message("take it", transfer=[port])
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        sup.spawn(worker, channel.port2, elsewhere.port1)
        await trio.testing.wait_all_tasks_blocked()
        assert not states[0].transferred
        assert states[1].transferred  # detached: posting on it does nothing
        event = await elsewhere.port2.receive()
        event.ports[0].post_message("still entangled")
        assert (await channel.port1.receive()).data == "still entangled"
        sup.cancel()
    close_ports(channel, elsewhere)


# -- the death notice ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["returns", "crashes", "cancelled", "supervisor cancelled"])
async def test_stopping_for_good_closes_the_slot_ports(how: str) -> None:
    """However a child stops for good, each peer sees ``close`` and ``EndOfChannel``."""
    by_receive, by_handler = MessageChannel(), MessageChannel()
    closed = trio.Event()
    by_handler.port1.onclose = lambda event: closed.set()
    by_handler.port1.start()  # the close event goes through the port's queue (D5)
    go = trio.Event()

    async def child(a: MessagePort, b: MessagePort) -> None:
        await go.wait()
        if how == "crashes":
            raise Boom

    async with open_supervisor() as sup:
        handle = sup.spawn(child, by_receive.port2, by_handler.port2, restart=Restart.TEMPORARY)
        await trio.testing.wait_all_tasks_blocked()
        assert by_receive.port1.statistics().entangled
        if how == "cancelled":
            handle.cancel()
        elif how == "supervisor cancelled":
            sup.cancel()
        else:
            go.set()
        with pytest.raises(trio.EndOfChannel):
            await by_receive.port1.receive()
        await closed.wait()


async def test_ports_an_incarnation_made_close_when_it_crashes_even_if_restarted() -> None:
    """A crashed incarnation's own conversations end; the slot's port lives on."""
    slot, out = MessageChannel(), MessageChannel()
    crash = trio.Event()

    async def child(port: MessagePort, outbox: MessagePort) -> None:
        if actors.current_actor().incarnation == 1:
            mine = MessageChannel()
            outbox.post_message("talk to me", transfer=[mine.port2])
            await crash.wait()
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        sup.spawn(child, slot.port2, out.port1)
        conversation = (await out.port2.receive()).ports[0]
        crash.set()
        with pytest.raises(trio.EndOfChannel):
            await conversation.receive()
        assert slot.port1.statistics().entangled  # the slot's port: no close on a restart
        sup.cancel()


async def test_ports_an_actor_received_close_when_it_ends() -> None:
    """Ports that came in messages, by receive() or by a handler, are the actor's own."""
    inbox_a, inbox_b = MessageChannel(), MessageChannel()
    via_receive, via_handler = MessageChannel(), MessageChannel()
    done = trio.Event()

    async def child(a: MessagePort, b: MessagePort) -> None:
        held: list[MessagePort] = []  # held, so only the end of the actor can close them

        def on_message(event: MessageEvent) -> None:
            held.extend(event.ports)
            done.set()

        b.onmessage = on_message
        held.extend((await a.receive()).ports)
        await done.wait()

    async with open_supervisor() as sup:
        sup.spawn(child, inbox_a.port2, inbox_b.port2, restart=Restart.TRANSIENT)
        await trio.testing.wait_all_tasks_blocked()
        inbox_a.port1.post_message("here", transfer=[via_receive.port2])
        inbox_b.port1.post_message("here", transfer=[via_handler.port2])
    for kept in (via_receive.port1, via_handler.port1):
        with pytest.raises(trio.EndOfChannel):
            await kept.receive()
    close_ports(inbox_a, inbox_b, via_receive, via_handler)


async def test_a_port_the_actor_gave_away_is_not_closed() -> None:
    """Ownership moves with a transfer: what an actor handed on outlives it."""
    out = MessageChannel()

    async def child(outbox: MessagePort) -> None:
        mine = MessageChannel()
        outbox.post_message("yours", transfer=[mine.port1, mine.port2])

    async with open_supervisor() as sup:
        sup.spawn(child, out.port1, restart=Restart.TRANSIENT)
    a, b = (await out.port2.receive()).ports
    a.post_message("alive")
    assert (await b.receive()).data == "alive"
    close_ports(out, a, b)


async def test_death_notice_between_two_actors() -> None:
    """Actor A talks to actor B; when B stops for good, A's conversation ends."""
    channel = MessageChannel()
    a_saw: list[str] = []

    async def b(port: MessagePort) -> None:
        async for event in port:
            if event.data == "quit":
                return
            port.post_message(f"echo {event.data}")

    async def a(port: MessagePort) -> None:
        port.post_message("hi")
        port.post_message("quit")
        async for event in port:
            a_saw.append(event.data)
        a_saw.append("EndOfChannel")

    async with open_supervisor() as sup:
        sup.spawn(b, channel.port2, restart=Restart.TRANSIENT)
        sup.spawn(a, channel.port1, restart=Restart.TRANSIENT)
    assert a_saw == ["echo hi", "EndOfChannel"]


async def test_messages_wait_in_the_slot_port_during_a_backoff(autojump_clock: Any) -> None:
    """While a child waits to be restarted, its port stays open and messages queue."""
    channel = MessageChannel()
    got: list[object] = []

    async def worker(port: MessagePort) -> None:
        async for event in port:
            if event.data == "bad":
                raise Boom
            got.append((trio.current_time(), event.data))

    backoff = actors.Backoff(initial=3.0)
    async with open_supervisor(backoff=backoff) as sup:
        handle = sup.spawn(worker, channel.port2)
        channel.port1.post_message("bad")
        await trio.sleep(1)
        assert handle.statistics().state is actors.ActorState.RESTARTING
        channel.port1.post_message("good")
        assert handle.statistics().queued == 1
        await trio.sleep(5)
        assert got == [(pytest.approx(3.0), "good")]
        sup.cancel()


async def test_statistics_count_the_ports_an_actor_owns() -> None:
    """``ports`` counts the slot's open ports and the incarnation's."""
    slot = MessageChannel()
    release = trio.Event()

    async def child(port: MessagePort) -> None:
        mine = MessageChannel()
        await release.wait()
        mine.port1.close()
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        handle = sup.spawn(child, slot.port2)
        await trio.testing.wait_all_tasks_blocked()
        assert handle.statistics().ports == 3
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert handle.statistics().ports == 2  # mine.port2 is disentangled, not closed
        sup.cancel()
    assert handle.statistics().ports == 0


async def test_structured_clone_inside_an_actor_keeps_the_moved_ports_its_own() -> None:
    """A port moved by ``structured_clone(..., transfer=)`` in an actor is still the actor's."""
    channel = MessageChannel()

    async def child(port: MessagePort) -> None:
        moved = actors.structured_clone(port, transfer=[port])
        assert moved.statistics().entangled
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        handle = sup.spawn(child, channel.port2)
        await trio.testing.wait_all_tasks_blocked()
        assert handle.statistics().ports == 1  # the moved one; the slot's object is detached
        handle.cancel()
    with pytest.raises(trio.EndOfChannel):
        await channel.port1.receive()
