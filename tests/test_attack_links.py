"""Adversarial tests of process links (writes at once, batches, a receive() that reads)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from _attack_actors import posts_after_a_checkpoint_then_exits
from _helpers import close_ports

from actors import MessageChannel, MessagePort, Restart, open_supervisor
from actors._process.link import IN_A_ROW, SocketLink
from actors._queue import PortCore
from actors._wire import frames
from actors._wire.node import Node, RemoteEnd, new_name


@pytest.mark.xfail(
    strict=True,
    reason="SocketLink._in_a_row counts writes since the writer task last ran, not since the"
    " sender's last checkpoint: the writer is woken only at the 16th, so small bursts add up",
)
async def test_a_burst_of_in_a_row_after_a_checkpoint_leaves_before_os_exit() -> None:
    """processes.md: only a process that posts more than IN_A_ROW messages without a
    checkpoint and then dies abruptly may lose messages. This one posts one message, passes
    a checkpoint, posts IN_A_ROW, and calls os._exit: every message must arrive."""
    channel = MessageChannel()
    with trio.fail_after(15):
        async with open_supervisor() as sup:
            handle = sup.spawn(
                posts_after_a_checkpoint_then_exits,
                channel.port2,
                process=True,
                restart=Restart.TEMPORARY,
            )
            for i in range(IN_A_ROW + 1):
                assert (await channel.port1.receive()).data == ("sync", i)
            channel.port1.post_message("go")
            got = []
            with contextlib.suppress(trio.EndOfChannel):  # the slot ends with the process
                async for event in channel.port1:
                    got.append(tuple(event.data))
            await handle.wait()
    close_ports(channel)
    assert got == [("alone", 0)] + [("burst", i) for i in range(IN_A_ROW)]


@asynccontextmanager
async def linked() -> AsyncIterator[tuple[SocketLink, MessagePort, socket.socket]]:
    """This run's node with a SocketLink to a peer the test plays (our end of a socketpair),
    and a port here whose peer is over there (as tests/test_link_writes.py's)."""
    async with trio.open_nursery() as nursery:
        node = Node()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        theirs.setblocking(False)
        peer = new_name()
        link = SocketLink(node, peer, ours)
        node.add_link(peer, link)
        nursery.start_soon(link.run)
        core = PortCore(node.token)
        core.peer = RemoteEnd(node, core, new_name(), 0, peer)
        port = MessagePort._create(core)
        try:
            yield link, port, theirs
        finally:
            port.close()
            theirs.close()
            nursery.cancel_scope.cancel()


async def test_flush_returns_when_the_link_breaks_while_the_writer_waits_for_room() -> None:
    """The peer does not read (the socket is full: the writer waits for room), then breaks
    the framing: the link is over, and a flush() waiting for the writer must end (the child
    awaits `link.flush()` before it exits)."""
    async with linked() as (link, port, theirs):
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
