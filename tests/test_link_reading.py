"""A `receive()` blocked at a port whose messages come from another process reads the link
itself (`actors._process.link.read_for`): no reader task and no trip through the scheduler
between the socket and the task that wanted the message. These tests hold it to what
`receive()` promises anyway: every message once, in order, to the right task; cancellation
loses nothing; a close, a handler, or a process that dies wakes it with the right outcome;
and the link's writer is never disturbed by the waking."""

from __future__ import annotations

import os
import signal

import pytest
import trio
import trio.testing
from _helpers import close_ports
from _link_actors import echo_each, holds, stalls_then_echoes

from actors import MessageChannel, MessagePort, Restart, open_supervisor
from actors._process.link import SocketLink
from actors._queue import PortCore
from actors._wire.home import HomeEnd


def link_of(port: MessagePort) -> SocketLink:
    """The process link `port`'s messages come by (its peer is a process actor's slot)."""
    core = port._core
    assert core is not None
    peer = core.peer
    assert isinstance(peer, PortCore)
    assert isinstance(peer.sink, HomeEnd), (peer, peer.sink, peer.peer)
    node = peer.sink.node
    link = node.links[node.routes[peer.sink.location]]
    assert isinstance(link, SocketLink)
    return link


async def echoed(port: MessagePort, value: object) -> object:
    port.post_message(value)
    return (await port.receive()).data


async def test_a_blocked_receive_reads_the_link_and_gets_every_message_in_order() -> None:
    channel = MessageChannel()
    with trio.fail_after(20):
        async with open_supervisor() as sup:
            sup.spawn(echo_each, channel.port2, process=True, restart=Restart.TEMPORARY)
            assert await echoed(channel.port1, "hello") == "hello"
            async with trio.open_nursery() as nursery:
                got: list[object] = []

                async def receive() -> None:
                    got.append((await channel.port1.receive()).data)

                nursery.start_soon(receive)
                await trio.testing.wait_all_tasks_blocked()
                assert link_of(channel.port1)._helper is not None  # it waits on the socket
                channel.port1.post_message("first")
            assert got == ["first"]
            for n in range(200):  # a conversation, and bursts
                assert await echoed(channel.port1, n) == n
            for n in range(500):
                channel.port1.post_message(n)
            assert [(await channel.port1.receive()).data for _ in range(500)] == list(range(500))
            sup.cancel()
    close_ports(channel)


async def test_receives_on_two_ports_over_one_link_each_get_their_own() -> None:
    """Two tasks blocked at two ports whose peers are in one process: the last to wait
    reads the link, the other is woken when its message comes; each gets its own, in order."""
    a, b = MessageChannel(), MessageChannel()
    with trio.fail_after(20):
        async with open_supervisor() as sup:
            sup.spawn(echo_each, a.port2, b.port2, process=True, restart=Restart.TEMPORARY)
            assert await echoed(a.port1, 0) == 0
            got: dict[str, list[object]] = {"a": [], "b": []}

            async def reader(name: str, port: MessagePort, n: int) -> None:
                for _ in range(n):
                    got[name].append((await port.receive()).data)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader, "a", a.port1, 300)
                nursery.start_soon(reader, "b", b.port1, 300)
                await trio.testing.wait_all_tasks_blocked()
                for n in range(300):
                    (a.port1 if n % 2 else b.port1).post_message(("x", n))
                    (b.port1 if n % 2 else a.port1).post_message(("y", n))
                    if n % 7 == 0:
                        await trio.lowlevel.checkpoint()
            assert got["a"] == [("x" if n % 2 else "y", n) for n in range(300)]
            assert got["b"] == [("y" if n % 2 else "x", n) for n in range(300)]
            sup.cancel()
    close_ports(a, b)


async def test_a_cancelled_receive_that_read_the_link_loses_nothing() -> None:
    channel = MessageChannel()
    with trio.fail_after(20):
        async with open_supervisor() as sup:
            sup.spawn(echo_each, channel.port2, process=True, restart=Restart.TEMPORARY)
            assert await echoed(channel.port1, "ready") == "ready"
            for n in range(20):
                with trio.move_on_after(0.001 * (n % 3)):  # cancelled while it waits, or not
                    await channel.port1.receive()
                    pytest.fail("nothing was posted")
                channel.port1.post_message(n)
                assert (await channel.port1.receive()).data == n
            sup.cancel()
    close_ports(channel)


async def test_a_close_or_a_handler_wakes_a_receive_that_reads_the_link() -> None:
    channel = MessageChannel()
    with trio.fail_after(20):
        async with open_supervisor() as sup:
            sup.spawn(echo_each, channel.port2, process=True, restart=Restart.TEMPORARY)
            assert await echoed(channel.port1, "up") == "up"
            outcome: list[type[BaseException]] = []

            async def reads_then_waits(echoed_event: trio.Event) -> None:
                assert await echoed(channel.port1, "x") == "x"  # a read of the link wakes it
                echoed_event.set()
                try:
                    await channel.port1.receive()  # right after: it reads the link
                except (trio.BusyResourceError, trio.ClosedResourceError) as exc:
                    outcome.append(type(exc))

            async with trio.open_nursery() as nursery:
                for wake in ("a handler", "a close"):
                    echoed_event = trio.Event()
                    nursery.start_soon(reads_then_waits, echoed_event)
                    await echoed_event.wait()
                    await trio.testing.wait_all_tasks_blocked()
                    assert link_of(channel.port1)._helper is not None
                    if wake == "a handler":
                        channel.port1.onmessage = lambda event: None  # they get messages now
                        await trio.testing.wait_all_tasks_blocked()
                        assert outcome == [trio.BusyResourceError]
                        channel.port1.onmessage = None
                    else:
                        channel.port1.close()
            assert outcome == [trio.BusyResourceError, trio.ClosedResourceError]
            sup.cancel()
    close_ports(channel)


async def test_a_process_that_dies_ends_a_receive_that_reads_its_link() -> None:
    """A port of the process (moved into it) closes when it is SIGKILLed: the task reading
    the link gets EndOfChannel after what had arrived."""
    inbox, report, moving = MessageChannel(), MessageChannel(), MessageChannel()
    with trio.fail_after(20):
        async with open_supervisor() as sup:
            handle = sup.spawn(
                holds, inbox.port2, report.port2, process=True, restart=Restart.TEMPORARY
            )
            inbox.port1.post_message("take it", [moving.port2])
            ready, pid = (await report.port1.receive()).data
            assert ready == "ready"
            async with trio.open_nursery() as nursery:
                ended: list[bool] = []

                kept = trio.Event()

                async def receive() -> None:
                    assert await echoed(moving.port1, "keep it") == "kept"
                    kept.set()
                    with pytest.raises(trio.EndOfChannel):
                        await moving.port1.receive()  # right after a read: it reads the link
                    ended.append(True)

                nursery.start_soon(receive)
                await kept.wait()
                await trio.testing.wait_all_tasks_blocked()
                assert link_of(inbox.port1)._helper is not None
                os.kill(pid, signal.SIGKILL)
            assert ended == [True]
            await handle.wait()
    close_ports(inbox, report, moving)


async def test_waking_a_receive_never_disturbs_the_writer() -> None:
    """The child's process stalls, so the socket to it fills and the link's writer waits to
    write; a receive() reading the link meanwhile is woken (its port is closed): the writer
    goes on, and every message arrives, in order."""
    channel, control, other = MessageChannel(), MessageChannel(), MessageChannel()
    with trio.fail_after(30):
        async with open_supervisor() as sup:
            sup.spawn(
                stalls_then_echoes,
                channel.port2,
                control.port2,
                other.port2,
                process=True,
                restart=Restart.TEMPORARY,
            )
            woken: list[bool] = []
            async with trio.open_nursery() as nursery:
                up = trio.Event()

                async def waiter() -> None:
                    assert (await control.port1.receive()).data == "up"
                    up.set()
                    with pytest.raises(trio.ClosedResourceError):
                        await other.port1.receive()  # right after a read: it reads the link
                    woken.append(True)

                nursery.start_soon(waiter)
                await up.wait()
                await trio.testing.wait_all_tasks_blocked()
                link = link_of(channel.port1)
                assert link._helper is not None
                big = "x" * 4096
                for n in range(400):  # about 1.6 MB: more than the socket holds
                    channel.port1.post_message((n, big))
                await trio.testing.wait_all_tasks_blocked()
                assert link._out or link._writing  # the writer waits for room
                other.port1.close()
            assert woken == [True]
            got = [(await channel.port1.receive()).data[0] for _ in range(400)]
            assert got == list(range(400))
            sup.cancel()
    close_ports(channel, control, other)
