"""Adversarial tests of process links (writes at once, batches, a receive() that reads)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import final

import pytest
import trio
import trio.lowlevel
import trio.testing
from _attack_actors import posts_after_a_wait_then_exits
from _helpers import close_ports

from actors import MessageChannel, MessagePort, Restart, open_supervisor
from actors._process.link import IN_A_ROW, SocketLink
from actors._queue import PortCore
from actors._wire import codec, frames
from actors._wire.frames import USER
from actors._wire.node import Node, RemoteEnd, new_name


async def test_the_first_in_a_row_posted_after_a_wait_leave_before_os_exit() -> None:
    """processes.md: the first IN_A_ROW messages a process posts after it last waited (had
    nothing to run) are written at once. This one posts one message, waits, posts
    IN_A_ROW, and calls os._exit: every message arrives."""
    channel = MessageChannel()
    with trio.fail_after(15):
        async with open_supervisor() as sup:
            handle = sup.spawn(
                posts_after_a_wait_then_exits,
                channel.port2,
                process=True,
                restart=Restart.TEMPORARY,
            )
            for i in range(IN_A_ROW + 1):
                assert (await channel.port1.receive()).data == ("sync", i)
            channel.port1.post_message("go")
            assert (await channel.port1.receive()).data == ("alone", 0)
            got = []
            with contextlib.suppress(trio.EndOfChannel):  # the slot ends with the process
                async for event in channel.port1:
                    got.append(tuple(event.data))
            await handle.wait()
    close_ports(channel)
    assert got == [("burst", i) for i in range(IN_A_ROW)]


@final
class Peer:
    """The node at the other end of `linked()`'s link, as the test plays it."""

    def __init__(self, node: Node, name: int, sock: socket.socket, cids: list[int]) -> None:
        self.node, self.name, self.sock, self.cids = node, name, sock, cids
        self.seqs = [1] * len(cids)

    def user(self, port: int, message: object) -> bytes:
        """The framed USER frame of the next message to `linked()`'s port number `port`."""
        seq = self.seqs[port]
        self.seqs[port] = seq + 1
        payload = codec.plain(message)
        assert payload is not None
        fields: tuple[object, ...] = (self.cids[port], 0, seq, payload, [], False)
        return frames.framed(frames.encode(self.node.name, self.name, USER, *fields))


@asynccontextmanager
async def linked(count: int = 1) -> AsyncIterator[tuple[SocketLink, list[MessagePort], Peer]]:
    """This run's node with a SocketLink to a peer the test plays (our end of a socketpair),
    and `count` ports here whose peers are over there (as tests/test_link_writes.py's)."""
    async with trio.open_nursery() as nursery:
        node = Node()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        theirs.setblocking(False)
        name = new_name()
        link = SocketLink(node, name, ours)
        node.add_link(name, link)
        nursery.start_soon(link.run)
        ports, cids = [], []
        for _ in range(count):
            core = PortCore(node.token)
            cids.append(new_name())
            core.peer = RemoteEnd(node, core, cids[-1], 0, name)
            ports.append(MessagePort._create(core))
        try:
            yield link, ports, Peer(node, name, theirs, cids)
        finally:
            for port in ports:
                port.close()
            theirs.close()
            nursery.cancel_scope.cancel()


async def test_flush_returns_when_the_link_breaks_while_the_writer_waits_for_room() -> None:
    """The peer does not read (the socket is full: the writer waits for room), then breaks
    the framing: the link is over, and a flush() waiting for the writer must end (the child
    awaits `link.flush()` before it exits)."""
    async with linked() as (link, [port], peer):
        theirs = peer.sock
        await trio.testing.wait_all_tasks_blocked()
        big = "x" * 65536
        while not link._writing:
            port.post_message(big)
            await trio.testing.wait_all_tasks_blocked()
        flushed = trio.Event()

        async def flush() -> None:
            await link.flush()
            flushed.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flush)
            await trio.testing.wait_all_tasks_blocked()
            theirs.send(frames.HEADER.pack(frames.MAX_FRAME + 1, 0))  # breaks the framing
            with trio.fail_after(5):
                await flushed.wait()


async def receives(port: MessagePort, got: list[object], count: int, done: trio.Event) -> None:
    """Receive at `port` until `count` messages are in `got`."""
    while len(got) < count:
        got.append((await port.receive()).data)
    done.set()


async def cancelled_receive(port: MessagePort, scope: trio.CancelScope) -> None:
    """Receive at `port` in `scope`, which is cancelled before anything comes."""
    with scope:
        await port.receive()
        pytest.fail("cancelled before anything came")


async def test_two_receives_at_one_port_return_its_messages_in_order() -> None:
    """Two tasks receive at one port (A, then B, which takes A's place reading the link);
    a third task, receiving at another port over the same link, takes B's place just as
    two messages for the first port arrive. The receive() calls at the first port must
    return its messages in order (a message in hand holds the next one back, as always)."""
    for _ in range(20):  # trio runs a batch's tasks in one order or the reverse
        async with linked(2) as (link, [p, q], peer):
            got: list[object] = []
            done = trio.Event()
            async with trio.open_nursery() as nursery:
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(receives, p, got, 3, done)  # A
                await trio.testing.wait_all_tasks_blocked()
                peer.sock.send(peer.user(0, 1))  # wakes A: A comes back and reads the link
                await trio.testing.wait_all_tasks_blocked()
                a = link._helper
                assert a is not None
                nursery.start_soon(receives, p, got, 3, done)  # B: takes A's place
                await trio.testing.wait_all_tasks_blocked()
                assert link._helper not in (None, a)
                peer.sock.send(peer.user(0, 2) + peer.user(0, 3) + peer.user(1, "q"))
                assert (await q.receive()).data == "q"  # takes B's place, reads the link
                await done.wait()
                nursery.cancel_scope.cancel()
            assert got == [1, 2, 3]


async def test_one_task_gets_a_ports_messages_in_order_when_another_gives_up() -> None:
    """A receives at a port; B receives there too, reads the link in A's place, and is
    cancelled; a third task, receiving at another port over the same link, takes B's place
    just as two messages for the first port arrive. A gets them in order."""
    for _ in range(20):  # trio runs a batch's tasks in one order or the reverse
        async with linked(2) as (link, [p, q], peer):
            got: list[object] = []
            done = trio.Event()
            async with trio.open_nursery() as nursery:
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(receives, p, got, 3, done)  # A
                await trio.testing.wait_all_tasks_blocked()
                peer.sock.send(peer.user(0, 1))  # wakes A: A comes back and reads the link
                await trio.testing.wait_all_tasks_blocked()
                a = link._helper
                b_scope = trio.CancelScope()
                nursery.start_soon(cancelled_receive, p, b_scope)  # B: takes A's place
                await trio.testing.wait_all_tasks_blocked()
                assert link._helper not in (None, a)
                b_scope.cancel()
                peer.sock.send(peer.user(0, 2) + peer.user(0, 3) + peer.user(1, "q"))
                assert (await q.receive()).data == "q"  # takes B's place, reads the link
                await done.wait()
            assert got == [1, 2, 3]
