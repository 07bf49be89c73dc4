"""Where handlers run: our rules for dispatch, which the web leaves to the event loop.

The rules (docs/explanation/ports.md, "Where handlers run"): one trio system task per run
dispatches the events of every started port that has listeners, in the order they were posted
across ports;
it drains ready events in a loop and yields to other tasks every FAIRNESS_BUDGET events; an
async handler is awaited before its port's next event, without holding back other ports; each
message goes to the message handlers if the port has any when it is dispatched, otherwise to
``receive()``.
"""

from __future__ import annotations

import contextvars
import gc
import subprocess
import sys
import threading
import weakref

import pytest
import structlog.testing
import trio
import trio.testing
from _helpers import close_ports

import actors
from actors import MessageChannel, MessageEvent
from actors._queue import FAIRNESS_BUDGET


async def test_dispatcher_yields_every_budget_events() -> None:
    """A long burst lets another task run between slices of at most the budget."""
    channel, order = MessageChannel(), []
    channel.port2.onmessage = lambda e: order.append("m")
    for _ in range(1280):
        channel.port1.post_message(0)

    async def other() -> None:
        for _ in range(3):
            order.append("o")
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
    await trio.testing.wait_all_tasks_blocked()
    runs = "".join(order)
    assert runs.count("m") == 1280
    # The other task finished while the burst still had messages left...
    assert runs.rindex("o") < runs.rindex("m") - FAIRNESS_BUDGET
    # ...and the dispatcher only ever stopped at a budget boundary.
    assert all(len(run) % FAIRNESS_BUDGET == 0 for run in runs.split("o") if run)
    close_ports(channel)


async def test_listener_removed_during_dispatch_is_skipped() -> None:
    """A listener removed by an earlier listener does not get the event in progress."""
    channel, log = MessageChannel(), []
    port = channel.port2

    def second(e: MessageEvent) -> None:
        log.append("second")

    port.add_event_listener("message", lambda e: port.remove_event_listener("message", second))
    port.add_event_listener("message", second)
    port.start()
    channel.port1.post_message(0)
    await trio.testing.wait_all_tasks_blocked()
    assert log == []
    close_ports(channel)


def test_handlers_set_before_trio_run_dispatch_inside_it() -> None:
    """A port started outside trio.run dispatches once a message arrives inside a run."""
    channel, seen = MessageChannel(), []
    channel.port2.onmessage = lambda e: seen.append(e.data)

    async def post(tag: str) -> None:
        channel.port1.post_message(tag)
        await trio.testing.wait_all_tasks_blocked()

    trio.run(post, "first run")
    trio.run(post, "second run")  # the first run's dispatcher ended with it
    assert seen == ["first run", "second run"]
    close_ports(channel)


async def test_post_message_from_another_thread() -> None:
    """``trio.from_thread.run_sync(port.post_message, ...)`` is how threads post."""
    channel = MessageChannel()

    def in_thread() -> str:
        trio.from_thread.run_sync(channel.port1.post_message, {"from": "thread"})
        return threading.current_thread().name

    name = await trio.to_thread.run_sync(in_thread)
    event = await channel.port2.receive()
    assert event.data == {"from": "thread"}
    assert name != threading.current_thread().name
    close_ports(channel)


def test_dispatch_is_seen_by_wait_all_tasks_blocked() -> None:
    """Dispatch is a trio task: wait_all_tasks_blocked() returns only after it ran."""
    code = """
import trio, trio.testing
from actors import MessageChannel
async def main():
    c, seen = MessageChannel(), []
    c.port2.onmessage = seen.append
    for i in range(500):
        c.port1.post_message(i)
    await trio.testing.wait_all_tasks_blocked()
    assert [e.data for e in seen] == list(range(500)), len(seen)
trio.run(main)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


async def test_failed_receive_does_not_start_the_queue() -> None:
    """receive() on a port with message handlers raises before it starts anything (D1)."""
    channel = MessageChannel()
    channel.port2.add_event_listener("message", lambda e: None)
    with pytest.raises(trio.BusyResourceError):
        await channel.port2.receive()
    assert channel.port2.statistics().started is False
    close_ports(channel)


async def test_a_port_is_let_go_when_nothing_more_can_arrive() -> None:
    """A handler port whose peer is gone, with nothing queued, is not kept alive."""
    ports, cores = [], []
    for _ in range(20):
        channel = MessageChannel()
        channel.port2.onmessage = lambda e: None
        cores.append(channel.port2._core)
        channel.port1.close()
        ports.append(weakref.ref(channel.port2))
    del channel
    await trio.testing.wait_all_tasks_blocked()
    assert all(core is not None and core.handle is None for core in cores)
    gc.collect()
    assert all(ref() is None for ref in ports)


async def test_close_listener_added_late_still_hears_the_close() -> None:
    """A close marker nobody listened for is dispatched to a listener added later."""
    channel, closes = MessageChannel(), []
    channel.port2.onmessage = lambda e: None
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    channel.port2.onclose = closes.append
    await trio.testing.wait_all_tasks_blocked()
    assert [event.type for event in closes] == ["close"]


async def test_close_reached_by_receive_fires_onclose() -> None:
    """In receive() mode, close fires once receive() has drained the peer's messages."""
    channel, closes = MessageChannel(), []
    channel.port2.onclose = closes.append
    channel.port1.post_message("last")
    channel.port1.close()
    assert [event.data async for event in channel.port2] == ["last"]
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1


async def test_handlers_see_the_contextvars_of_the_task_that_started_dispatch() -> None:
    """Handlers run in a copy of the context of the task that set them up."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    channel, seen = MessageChannel(), []
    var.set("actor-context")
    channel.port2.onmessage = lambda e: seen.append(var.get())
    channel.port1.post_message(0)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == ["actor-context"]
    close_ports(channel)


async def test_events_of_different_ports_are_dispatched_in_post_order() -> None:
    """Across ports, handlers run in the order the messages were posted (rule 6)."""
    channels = [MessageChannel() for _ in range(4)]
    order: list[tuple[int, int]] = []
    for n, channel in enumerate(channels):
        channel.port2.onmessage = lambda e, n=n: order.append((n, e.data))
    posted = [(n, i) for i in range(50) for n in (3, 1, 0, 2)]
    for n, i in posted:
        channels[n].port1.post_message(i)
    await trio.testing.wait_all_tasks_blocked()
    assert order == posted
    close_ports(channels)


async def test_a_port_started_late_gets_its_older_events_first() -> None:
    """Events queued before start() come before events posted to other ports after them."""
    late, early, order = MessageChannel(), MessageChannel(), []
    early.port2.onmessage = lambda e: order.append(e.data)
    late.port1.post_message("late: posted first")
    early.port1.post_message("early: posted second")
    late.port2.onmessage = lambda e: order.append(e.data)
    await trio.testing.wait_all_tasks_blocked()
    assert order == ["late: posted first", "early: posted second"]
    close_ports(late, early)


async def test_an_async_handler_holds_back_only_its_own_port() -> None:
    """While one port's async handler waits, other ports' events keep flowing."""
    slow, fast, log = MessageChannel(), MessageChannel(), []
    release = trio.Event()

    async def waits(event: MessageEvent) -> None:
        log.append(("slow", event.data))
        await release.wait()
        log.append(("slow done", event.data))

    slow.port2.onmessage = waits
    fast.port2.onmessage = lambda e: log.append(("fast", e.data))
    slow.port1.post_message(1)
    slow.port1.post_message(2)
    fast.port1.post_message(1)
    await trio.testing.wait_all_tasks_blocked()
    # An async handler's body starts in its helper task, so the order of these two is open.
    assert sorted(log) == [("fast", 1), ("slow", 1)]
    release.set()
    await trio.testing.wait_all_tasks_blocked()
    assert log[2:] == [("slow done", 1), ("slow", 2), ("slow done", 2)]
    close_ports(slow, fast)


def test_events_left_when_a_run_ends_are_dispatched_in_the_next_run() -> None:
    """A run that ends with events still in line leaves them for the next run, in order."""
    channel, seen = MessageChannel(), []
    channel.port2.onmessage = lambda e: seen.append(e.data)

    async def post_and_leave() -> None:
        for n in range(FAIRNESS_BUDGET * 4):  # more than one slice: the run ends mid-way
            channel.port1.post_message(n)

    async def post_and_settle() -> None:
        channel.port1.post_message("next run")
        await trio.testing.wait_all_tasks_blocked()

    trio.run(post_and_leave)
    assert len(seen) < FAIRNESS_BUDGET * 4
    trio.run(post_and_settle)
    assert seen == [*range(FAIRNESS_BUDGET * 4), "next run"]
    close_ports(channel)


# -- a halted actor's handlers, and receive() behind a running handler ------------------------


class Boom(Exception):
    """A scripted crash."""


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_no_message_reaches_a_crashed_incarnation(kind: str) -> None:
    """A handler that raises on message 0 crashes its actor at once: the dispatcher gives the
    dead incarnation nothing more (not the rest of its batch), and messages 1-9 all go to the
    next incarnation, none lost."""
    got: list[tuple[int, int]] = []
    channel = actors.MessageChannel()

    async def child(port: actors.MessagePort) -> None:
        me = actors.current_actor().incarnation

        if kind == "sync":

            def handler(event: actors.MessageEvent) -> None:
                got.append((me, event.data))
                if event.data == 0:
                    raise Boom
        else:

            async def handler(event: actors.MessageEvent) -> None:  # type: ignore[misc]
                await trio.lowlevel.checkpoint()  # a taken, unrecorded message would be lost
                got.append((me, event.data))
                if event.data == 0:
                    raise Boom

        port.onmessage = handler
        await trio.sleep_forever()

    with structlog.testing.capture_logs():
        async with actors.open_supervisor() as sup:
            sup.spawn(child, channel.port2)
            await trio.testing.wait_all_tasks_blocked()
            for i in range(10):
                channel.port1.post_message(i)
            await trio.testing.wait_all_tasks_blocked()
            sup.cancel()
    assert got == [(1, 0)] + [(2, i) for i in range(1, 10)]


async def test_receive_waits_for_a_removed_async_handler_still_running() -> None:
    """An async handler is removed while it handles message 0; ``receive()`` then waits for
    it to finish, so the port's messages are consumed in order: 0, 1, 2, 3."""
    channel = actors.MessageChannel()
    order: list[object] = []
    release = trio.Event()

    async def handler(event: actors.MessageEvent) -> None:
        await release.wait()
        order.append(event.data)

    channel.port2.onmessage = handler
    for i in range(4):
        channel.port1.post_message(i)
    await trio.testing.wait_all_tasks_blocked()  # the handler holds message 0
    channel.port2.onmessage = None

    async def receive_three() -> None:
        for _ in range(3):
            order.append((await channel.port2.receive()).data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive_three)
        await trio.testing.wait_all_tasks_blocked()
        assert order == []  # receive() waits behind the running handler
        release.set()
    assert order == [0, 1, 2, 3]
    channel.port1.close()


async def test_a_receive_waiting_behind_a_handler_can_be_cancelled() -> None:
    """A ``receive()`` waiting for a running handler is cancelled cleanly: nothing is lost."""
    channel = actors.MessageChannel()
    release = trio.Event()

    async def handler(event: actors.MessageEvent) -> None:
        await release.wait()

    channel.port2.onmessage = handler
    channel.port1.post_message(0)
    channel.port1.post_message(1)
    await trio.testing.wait_all_tasks_blocked()
    channel.port2.onmessage = None
    with trio.move_on_after(0.01):
        await channel.port2.receive()
    release.set()
    assert (await channel.port2.receive()).data == 1
    channel.port1.close()
