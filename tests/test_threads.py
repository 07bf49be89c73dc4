"""Ports and threads: other threads may post to a run's ports; anything else is refused.

The rules are in docs/explanation/ports.md, "Ports and threads". A port belongs to the trio
run its channel was made in (or first started in); ``post_message`` from another thread is
cloned there and delivered through the run's token, in order per posting thread; every other
call from another thread raises ``RuntimeError`` naming ``trio.from_thread``, and changes
nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import close_ports

import actors
from actors import (
    ArrayBuffer,
    BroadcastChannel,
    DataCloneError,
    MessageChannel,
    MessageEvent,
    MessagePort,
    PortCollection,
)


def in_thread(fn: Callable[[], object]) -> BaseException | None:
    """Run ``fn`` in a plain thread (no trio run there) and return what it raised, if anything."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return raised[0] if raised else None


def step(coro: Coroutine[Any, Any, Any]) -> None:
    """Run a coroutine to its first suspension (where a refused call raises), then drop it."""
    try:
        coro.send(None)
    finally:
        coro.close()


def state(port: MessagePort) -> tuple[object, ...]:
    """What a refused call must leave as it was: the statistics, the listeners, the handlers."""
    return (
        port.statistics(),
        {type: tuple(entries) for type, entries in port._listeners.items()},
        dict(port._handlers),
        port._core,
    )


# -- posting from a thread ----------------------------------------------------------------


async def test_a_post_from_a_thread_reaches_a_task_blocked_in_receive() -> None:
    """A task waits in receive(); a worker thread posts: the task gets the message."""
    channel = MessageChannel()
    got: list[object] = []

    async def receiver() -> None:
        got.append((await channel.port2.receive()).data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        await trio.to_thread.run_sync(channel.port1.post_message, {"from": "a thread"})
    assert got == [{"from": "a thread"}]
    channel.port1.close()
    channel.port2.close()


async def test_close_after_posts_from_a_thread_wakes_the_receiver() -> None:
    """Posts from a thread, then close through trio.from_thread: all arrive, then the end."""
    channel = MessageChannel()

    def worker() -> None:
        for n in range(3):
            channel.port1.post_message(n)
        trio.from_thread.run_sync(channel.port1.close)

    got: list[object] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, worker)
        async for event in channel.port2:
            got.append(event.data)
    assert got == [0, 1, 2]


async def test_posts_from_several_threads_keep_each_threads_order() -> None:
    """Four threads post 2,000 messages each: each thread's messages arrive in its order."""
    channel = MessageChannel()
    threads, per_thread = 4, 2000
    together = threading.Barrier(threads)  # so that their posts interleave

    def worker(name: int) -> None:
        together.wait()
        for n in range(per_thread):
            channel.port1.post_message((name, n))
            if n % 50 == 49:
                time.sleep(0)  # hand the interpreter to another thread: posts interleave

    got: list[tuple[int, int]] = []
    async with trio.open_nursery() as nursery:
        for name in range(threads):
            nursery.start_soon(trio.to_thread.run_sync, worker, name)
        while len(got) < threads * per_thread:
            got.append((await channel.port2.receive()).data)
    for name in range(threads):
        assert [n for who, n in got if who == name] == list(range(per_thread))
    channel.port1.close()
    channel.port2.close()


async def test_a_thread_that_posts_100k_messages_loses_none() -> None:
    """100,000 posts from one thread all arrive, in order."""
    channel = MessageChannel()
    count = 100_000

    def worker() -> None:
        post = channel.port1.post_message
        for n in range(count):
            post(n)

    got: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, worker)
        while len(got) < count:
            got.append((await channel.port2.receive()).data)
    assert got == list(range(count))
    channel.port1.close()
    channel.port2.close()


async def test_a_post_from_a_thread_reaches_message_handlers() -> None:
    """A port with onmessage gets a thread's post through the dispatcher."""
    channel, got = MessageChannel(), []
    channel.port2.onmessage = lambda event: got.append(event.data)
    await trio.to_thread.run_sync(channel.port1.post_message, "handled")
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["handled"]
    channel.port1.close()
    channel.port2.close()


async def test_a_datacloneerror_in_a_thread_is_raised_there_and_sends_nothing() -> None:
    """An uncloneable message posted from a thread raises there; nothing arrives."""
    channel = MessageChannel()
    raised = await trio.to_thread.run_sync(
        in_thread, lambda: channel.port1.post_message({"f": lambda: None})
    )
    assert isinstance(raised, DataCloneError)
    await trio.testing.wait_all_tasks_blocked()
    assert channel.port2.statistics().queued == 0
    channel.port1.close()
    channel.port2.close()


async def test_a_thread_may_transfer_an_arraybuffer() -> None:
    """An ArrayBuffer in a thread's transfer list moves: detached there, arriving here."""
    channel, buf = MessageChannel(), ArrayBuffer(b"bytes")
    await trio.to_thread.run_sync(lambda: channel.port1.post_message(buf, [buf]))
    event = await channel.port2.receive()
    assert buf.detached
    assert bytes(event.data) == b"bytes"
    channel.port1.close()
    channel.port2.close()


async def test_a_run_port_in_a_threads_transfer_list_raises_and_detaches_nothing() -> None:
    """A port of the run in a thread's transfer list: RuntimeError, nothing detached or sent."""
    channel, other, buf = MessageChannel(), MessageChannel(), ArrayBuffer(4)
    raised = await trio.to_thread.run_sync(
        in_thread, lambda: channel.port1.post_message(None, [buf, other.port2])
    )
    assert isinstance(raised, RuntimeError)
    assert "trio.from_thread" in str(raised)
    assert not buf.detached
    assert other.port2.statistics().entangled
    await trio.testing.wait_all_tasks_blocked()
    assert channel.port2.statistics().queued == 0
    for port in (channel.port1, channel.port2, other.port1, other.port2):
        port.close()


async def test_a_port_of_no_run_made_in_a_thread_can_be_handed_to_the_run() -> None:
    """A thread makes a channel outside any run, sends one end here, and posts on the other."""
    carrier = MessageChannel()
    kept: list[MessagePort] = []

    def worker() -> None:
        own = MessageChannel()  # no run in this thread: the channel belongs to none
        carrier.port1.post_message("here is a port", [own.port2])
        kept.append(own.port1)

    await trio.to_thread.run_sync(worker)
    port = (await carrier.port2.receive()).ports[0]
    port.start()  # both ends now belong to this run
    await trio.to_thread.run_sync(kept[0].post_message, "over the thread's channel")
    assert (await port.receive()).data == "over the thread's channel"
    refused = await trio.to_thread.run_sync(in_thread, kept[0].close)
    assert isinstance(refused, RuntimeError)
    for each in (carrier.port1, carrier.port2, port, kept[0]):
        each.close()


def test_a_port_of_no_run_may_be_closed_from_any_thread() -> None:
    """A channel made outside any run and never started: another thread may close it."""
    channel = MessageChannel()
    assert in_thread(channel.port1.close) is None
    assert not channel.port2.statistics().entangled
    channel.port2.close()


def test_a_post_from_a_thread_after_the_run_ended_does_not_raise() -> None:
    """Posting from a thread to a port whose run has finished is dropped silently."""

    async def make() -> MessageChannel:
        channel = MessageChannel()
        channel.port2.start()
        return channel

    channel = trio.run(make)
    assert in_thread(lambda: channel.port1.post_message("too late")) is None
    assert channel.port2.statistics().queued == 0
    channel.port1.close()
    channel.port2.close()


async def test_a_post_from_a_thread_to_a_port_closed_meanwhile_is_dropped() -> None:
    """A thread's post that reaches the run after the receiving port closed is dropped, and
    the ports it carried are closed."""
    channel, kept = MessageChannel(), []

    def post() -> None:
        own = MessageChannel()  # made in this thread, outside any run
        channel.port1.post_message("late", [own.port2])
        kept.append(own.port1)

    assert in_thread(post) is None  # the run has not handled the post yet: no checkpoint since
    channel.port2.close()
    await trio.testing.wait_all_tasks_blocked()
    assert not kept[0].statistics().entangled
    close_ports(channel, kept)


def test_broadcasts_from_a_thread_after_the_run_ended_do_not_raise() -> None:
    """BroadcastChannel and PortCollection posts from a thread after the run are dropped."""

    async def make() -> tuple[BroadcastChannel, PortCollection, MessageChannel]:
        channel = MessageChannel()
        return BroadcastChannel("news"), PortCollection([channel.port1]), channel

    news, group, channel = trio.run(make)
    assert in_thread(lambda: news.post_message("too late")) is None
    assert in_thread(lambda: group.post_message("too late")) is None
    assert channel.port2.statistics().queued == 0
    close_ports(channel)


async def test_a_broadcast_from_a_thread_reaches_the_other_channels() -> None:
    """BroadcastChannel.post_message from a thread reaches the others of the name."""
    sender, listener = BroadcastChannel("news"), BroadcastChannel("news")
    await trio.to_thread.run_sync(sender.post_message, "from a thread")
    assert (await listener.receive()).data == "from a thread"
    sender.close()
    listener.close()


async def test_a_collection_post_from_a_thread_reaches_every_member() -> None:
    """PortCollection.post_message from a thread delivers to every member, in the run."""
    channels = [MessageChannel() for _ in range(3)]
    group = PortCollection(channel.port1 for channel in channels)
    await trio.to_thread.run_sync(group.post_message, {"to": "all"})
    for channel in channels:
        assert (await channel.port2.receive()).data == {"to": "all"}
    assert group.statistics().delivered == 3
    for channel in channels:
        channel.port1.close()
        channel.port2.close()


async def test_a_collection_post_from_a_thread_raises_datacloneerror_there() -> None:
    """An uncloneable message broadcast from a thread raises there; nobody gets it."""
    channel = MessageChannel()
    group = PortCollection([channel.port1])
    raised = await trio.to_thread.run_sync(in_thread, lambda: group.post_message(len))
    assert isinstance(raised, DataCloneError)
    await trio.testing.wait_all_tasks_blocked()
    assert group.statistics().sent == 0
    channel.port1.close()
    channel.port2.close()


# -- everything else is refused ------------------------------------------------------------


def listener(event: object) -> None:
    """A listener for the refused calls to add or remove."""


REFUSED: list[tuple[str, Callable[[MessagePort], object]]] = [
    ("MessagePort.close()", lambda port: port.close()),
    ("MessagePort.start()", lambda port: port.start()),
    ("MessagePort.statistics()", lambda port: port.statistics()),
    ("MessagePort.onmessage", lambda port: setattr(port, "onmessage", listener)),
    ("MessagePort.onmessageerror", lambda port: setattr(port, "onmessageerror", listener)),
    ("MessagePort.onclose", lambda port: setattr(port, "onclose", listener)),
    (
        "MessagePort.add_event_listener()",
        lambda port: port.add_event_listener("message", listener),
    ),
    (
        "MessagePort.remove_event_listener()",
        lambda port: port.remove_event_listener("close", listener),
    ),
    ("MessagePort.receive()", lambda port: step(port.receive())),
    ("MessagePort.send()", lambda port: step(port.send("x"))),
    ("MessagePort.aclose()", lambda port: step(port.aclose())),
    ("actors.ask()", lambda port: step(actors.ask(port, "x"))),
    ("transfer", lambda port: actors.structured_clone(port, transfer=[port])),
]


@pytest.mark.parametrize(("name", "call"), REFUSED, ids=[name for name, _ in REFUSED])
async def test_a_call_from_a_thread_is_refused_and_changes_nothing(
    name: str, call: Callable[[MessagePort], object]
) -> None:
    """Anything but post_message from another thread: RuntimeError naming the call and
    trio.from_thread, and the port is as it was."""
    channel = MessageChannel()
    port = channel.port1
    port.add_event_listener("close", listener)
    before = state(port)
    raised = await trio.to_thread.run_sync(in_thread, lambda: call(port))
    assert isinstance(raised, RuntimeError)
    assert "from a thread outside the trio run" in str(raised)
    assert "trio.from_thread" in str(raised)
    if name != "transfer":
        assert name in str(raised)
    assert state(port) == before
    channel.port1.close()
    channel.port2.close()


async def test_reply_from_a_thread_is_refused_and_sends_nothing() -> None:
    """event.reply() from another thread raises before it posts; the reply port stays open."""
    channel = MessageChannel()
    reply = MessageChannel()
    channel.port1.post_message("question", [reply.port2])
    event: MessageEvent = await channel.port2.receive()
    raised = await trio.to_thread.run_sync(in_thread, lambda: event.reply("answer"))
    assert isinstance(raised, RuntimeError)
    assert "MessageEvent.reply()" in str(raised)
    assert event.ports[0].statistics().entangled
    assert reply.port1.statistics().queued == 0
    for port in (channel.port1, channel.port2, reply.port1, event.ports[0]):
        port.close()


async def test_a_broadcast_channel_refuses_close_from_a_thread() -> None:
    """BroadcastChannel.close() from another thread raises; the channel stays open."""
    channel = BroadcastChannel("news")
    raised = await trio.to_thread.run_sync(in_thread, channel.close)
    assert isinstance(raised, RuntimeError)
    assert "BroadcastChannel.close()" in str(raised)
    assert "trio.from_thread.run_sync(channel.close)" in str(raised)
    assert channel._core is not None
    channel.close()


async def test_a_collection_refuses_add_from_a_thread() -> None:
    """PortCollection.add() from another thread raises; the port is not added."""
    channel, group = MessageChannel(), PortCollection()
    raised = await trio.to_thread.run_sync(in_thread, lambda: group.add(channel.port1))
    assert isinstance(raised, RuntimeError)
    assert "PortCollection.add()" in str(raised)
    assert channel.port1 not in group
    channel.port1.close()
    channel.port2.close()
