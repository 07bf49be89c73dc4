"""ask() and MessageEvent.reply(): request/reply whose reply port travels with the request."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from _helpers import close_ports

import actors
from actors import MessageChannel, MessageEvent, MessagePort, Restart, ask, open_supervisor


class Boom(Exception):
    """The crash the tests' actors raise."""


async def doubler(port: MessagePort) -> None:
    async for event in port:
        event.reply(event.data * 2)


async def test_ask_returns_the_reply() -> None:
    """A round trip: the replier's value comes back as the result of ``ask``."""
    channel = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(doubler, channel.port2)
        assert [await ask(channel.port1, i) for i in range(3)] == [0, 2, 4]
        sup.cancel()


async def test_the_reply_port_is_the_last_port_and_reply_reports_the_asker() -> None:
    """Ports listed in ``transfer`` come first; ``reply`` returns True while the asker waits."""
    channel, extra = MessageChannel(), MessageChannel()
    results: list[object] = []

    def handler(event: MessageEvent) -> None:
        assert event.ports[0].statistics().entangled
        results.append(len(event.ports))
        results.append(event.reply("ok"))
        event.ports[0].close()

    channel.port2.onmessage = handler
    assert await ask(channel.port1, "q", transfer=[extra.port2]) == "ok"
    assert results == [2, True]
    assert extra.port2.statistics().transferred
    close_ports(channel, extra)


async def test_a_reply_can_carry_ports_inside_its_value() -> None:
    """Transferred ports in the reply value reach the asker."""
    channel, fresh = MessageChannel(), MessageChannel()
    channel.port2.onmessage = lambda event: event.reply(
        {"port": fresh.port1}, transfer=[fresh.port1]
    )
    reply = await ask(channel.port1, "give me a port")
    reply["port"].post_message("through")
    assert (await fresh.port2.receive()).data == "through"
    close_ports(channel, fresh)


async def test_replier_closing_the_reply_port_breaks_ask() -> None:
    """Closing the reply port without replying: ``BrokenResourceError`` at once."""
    channel = MessageChannel()
    channel.port2.onmessage = lambda event: event.ports[-1].close()
    with pytest.raises(trio.BrokenResourceError, match="closed without a reply"):
        await ask(channel.port1, "anyone?")
    close_ports(channel)


async def test_replier_dying_without_replying_breaks_ask() -> None:
    """An actor that crashes holding the reply port closes it: the asker is told."""
    channel = MessageChannel()

    async def crasher(port: MessagePort) -> None:
        event = await port.receive()
        assert event.ports
        raise Boom

    async with open_supervisor() as sup:
        handle = sup.spawn(crasher, channel.port2)
        with pytest.raises(trio.BrokenResourceError):
            await ask(channel.port1, "please")
        await trio.testing.wait_all_tasks_blocked()
        assert handle.incarnation == 2  # restarted; its slot port still serves
        sup.cancel()


async def test_a_request_queued_at_an_actor_that_stops_breaks_ask() -> None:
    """A request still waiting when the actor stops for good is dropped, reply port closed."""
    channel = MessageChannel()

    async def never_reads(port: MessagePort) -> None:
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        handle = sup.spawn(never_reads, channel.port2, restart=Restart.TEMPORARY)
        async with trio.open_nursery() as nursery:

            async def asker() -> None:
                with pytest.raises(trio.BrokenResourceError):
                    await ask(channel.port1, "hello?")

            nursery.start_soon(asker)
            await trio.testing.wait_all_tasks_blocked()
            handle.cancel()


async def test_ask_on_a_port_whose_peer_is_gone() -> None:
    """Nobody can reply: ``BrokenResourceError`` without waiting."""
    channel = MessageChannel()
    channel.port2.close()
    with pytest.raises(trio.BrokenResourceError, match="nobody can reply"):
        await ask(channel.port1, "x")


async def test_ask_on_a_closed_or_transferred_port() -> None:
    """``ClosedResourceError``: you closed it (or moved it) yourself."""
    channel = MessageChannel()
    channel.port1.close()
    with pytest.raises(trio.ClosedResourceError):
        await ask(channel.port1, "x")


async def test_cancelling_ask_closes_the_reply_port() -> None:
    """The replier sees the asker leave: ``onclose`` on the reply port, reply() is False."""
    channel = MessageChannel()
    held: list[MessageEvent] = []
    left = trio.Event()

    def handler(event: MessageEvent) -> None:
        held.append(event)
        event.ports[-1].onclose = lambda _: left.set()
        event.ports[-1].start()

    channel.port2.onmessage = handler
    with trio.move_on_after(0.01) as scope:
        await ask(channel.port1, "slow")
    assert scope.cancelled_caught
    await left.wait()
    assert held[0].reply("too late") is False
    close_ports(channel)


async def test_ask_under_fail_after() -> None:
    """``fail_after`` turns a replier that never answers into ``TooSlowError``."""
    channel = MessageChannel()
    channel.port2.start()
    with pytest.raises(trio.TooSlowError):
        with trio.fail_after(0.01):
            await ask(channel.port1, "x")
    # The request (and its reply port, closed since) waits at the peer; nothing leaks.
    event = await channel.port2.receive()
    assert not event.ports[-1].statistics().entangled
    close_ports(channel)


async def test_reply_errors() -> None:
    """No ports: RuntimeError. Twice: ClosedResourceError. Uncloneable: the port stays."""
    channel = MessageChannel()
    events: list[MessageEvent] = []
    channel.port2.onmessage = events.append
    channel.port1.post_message("plain")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, channel.port1, "asked")
        await trio.testing.wait_all_tasks_blocked()
        plain, asked = events
        with pytest.raises(RuntimeError, match="no reply port"):
            plain.reply(1)
        with pytest.raises(actors.DataCloneError):
            asked.reply(trio.Lock())
        assert asked.reply("fine") is True
        with pytest.raises(trio.ClosedResourceError, match="already closed"):
            asked.reply("again")
    close_ports(channel)


async def test_ask_with_a_bad_message_sends_nothing_and_moves_nothing() -> None:
    """As post_message: a DataCloneError detaches nothing, not even the reply port."""
    channel, extra = MessageChannel(), MessageChannel()
    channel.port2.start()
    with pytest.raises(actors.DataCloneError):
        await ask(channel.port1, {"lock": trio.Lock()}, transfer=[extra.port2])
    assert not extra.port2.statistics().transferred
    assert channel.port2.statistics().queued == 0
    close_ports(channel, extra)


async def test_delegation_forwards_the_reply_port_to_a_worker() -> None:
    """A router hands a request and its reply port to a worker, which replies directly."""
    front, back = MessageChannel(), MessageChannel()

    async def router(clients: MessagePort, worker: MessagePort) -> None:
        async for event in clients:
            worker.post_message(event.data, transfer=[event.ports[-1]])

    async def worker(port: MessagePort) -> None:
        async for event in port:
            event.reply(f"{actors.current_actor().name} did {event.data}")

    async with open_supervisor() as sup:
        sup.spawn(router, front.port2, back.port1)
        sup.spawn(worker, back.port2)
        assert await ask(front.port1, "job") == "worker did job"
        sup.cancel()


async def test_ask_with_an_uncloneable_message_and_no_transfer_list() -> None:
    """The short path for ``transfer=None`` checks the message too: nothing is sent."""
    channel = MessageChannel()
    channel.port2.start()
    with pytest.raises(actors.DataCloneError, match="message"):
        await ask(channel.port1, [trio.Lock()])
    assert channel.port2.statistics().queued == 0
    assert channel.port1.statistics().entangled
    close_ports(channel)


async def test_ask_with_a_non_iterable_transfer_is_a_type_error_and_sends_nothing() -> None:
    """As on a port: ``transfer`` that is not iterable is a TypeError naming the rule."""
    channel = MessageChannel()
    with pytest.raises(TypeError, match="transfer must be an iterable"):
        await ask(channel.port1, "x", transfer=1)  # type: ignore[arg-type]
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_an_unanswered_ask_is_reported_once_after_warn_after(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """A request held without a reply: one `ask_unanswered` warning `warn_after` seconds in
    (the ask goes on waiting); an ask with a shorter `warn_after` made meanwhile is reported
    at its own time; one answered in time, or with `warn_after=None`, never is."""
    channel = MessageChannel()
    held: list[MessageEvent] = []

    async def holder() -> None:
        async for event in channel.port2:
            held.append(event)  # answered later, or never

    async def asker(warn_after: float | None, name: str) -> None:
        with trio.move_on_after(10):
            await actors.ask(channel.port1, name, warn_after=warn_after)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder)
        start = trio.current_time()
        nursery.start_soon(asker, 5.0, "slow")
        await trio.sleep(1)
        nursery.start_soon(asker, 0.5, "fast")
        nursery.start_soon(asker, None, "never")
        nursery.start_soon(asker, 3.0, "answered")
        await trio.sleep(2)
        [answered] = [e for e in held if e.data == "answered"]
        answered.reply("in time")
        await trio.sleep(12)
        nursery.cancel_scope.cancel()
    close_ports(channel.port1, channel.port2, *(e.ports[-1] for e in held))
    warnings = [e for e in logs if e["event"] == "ask_unanswered"]
    assert [round(w["waited"], 3) for w in warnings] == [0.5, 5.0]
    assert trio.current_time() - start > 12
    assert not watchdog_live()


async def test_a_stream_of_answered_asks_leaves_nothing_watched(autojump_clock: Any) -> None:
    """Each watched ask is held only while it waits: 1000 answered asks leave nothing."""
    channel = MessageChannel()

    async def echo() -> None:
        async for event in channel.port2:
            event.reply(event.data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        for i in range(1000):
            assert await actors.ask(channel.port1, i) == i
        assert not watchdog_live()
        channel.port1.close()


def watchdog_live() -> dict[Any, None]:
    from actors._overdue import _Watchdog

    return _Watchdog.current().live
