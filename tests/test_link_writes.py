"""How a process link writes (`actors._process.link`): a frame sent when nothing waits to go
is written at once, in the sender's step (a reply leaves without a task switch); the frames
sent after it before the next checkpoint wait for the writer task, which writes them in one
system call; and what shares the link keeps the order it was sent in."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from actors import MessagePort
from actors._process.link import IN_A_ROW, SocketLink
from actors._queue import PortCore
from actors._wire import codec, frames
from actors._wire.frames import USER, USERS
from actors._wire.node import Node, RemoteEnd, new_name


@asynccontextmanager
async def linked() -> AsyncIterator[tuple[SocketLink, list[MessagePort], socket.socket]]:
    """This run's node with a SocketLink to a peer the test plays (our end of a socketpair),
    and two ports here whose peers are over there."""
    async with trio.open_nursery() as nursery:
        node = Node()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        theirs.setblocking(False)
        peer = new_name()
        link = SocketLink(node, peer, ours)
        node.add_link(peer, link)
        nursery.start_soon(link.run)
        ports = []
        for _ in range(2):
            core = PortCore(node.token)
            core.peer = RemoteEnd(node, core, new_name(), 0, peer)
            ports.append(MessagePort._create(core))
        try:
            yield link, ports, theirs
        finally:
            for port in ports:
                port.close()
            theirs.close()
            nursery.cancel_scope.cancel()


def arrived(
    sock: socket.socket, reader: frames.Reader, kinds: list[int] | None = None
) -> list[tuple[int, Any]]:
    """The (channel, message) of each message readable now on `sock` (in USER and USERS
    frames); the kind of each frame read is added to `kinds`."""
    got = []
    while True:
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return got
        for frame, _ in reader.feed(data):
            fields = frames.decode(frame)
            if kinds is not None:
                kinds.append(fields[2])
            if fields[2] == USER:
                got.append((fields[3], codec.decode(fields[6], [], [])))
            elif fields[2] == USERS:
                got.extend((fields[3], codec.decode(p, [], [])) for p in fields[6])


async def test_frames_go_at_once_then_a_burst_goes_in_one_write() -> None:
    """The first IN_A_ROW frames go at once, each before post_message returns (what a
    process posts just before it dies has left); the rest of the burst waits for the writer,
    which writes it in one call; once it has run, frames go at once again."""
    async with linked() as (link, (port, _), theirs):
        await trio.testing.wait_all_tasks_blocked()
        reader = frames.Reader()
        for n in range(IN_A_ROW):
            port.post_message(n)
            assert [m for _, m in arrived(theirs, reader)] == [n]  # before any checkpoint
        written = link.sent
        for n in range(100):
            port.post_message(n)
        assert link.sent == written  # the burst waits for the writer
        assert arrived(theirs, reader) == []
        await trio.testing.wait_all_tasks_blocked()
        kinds: list[int] = []
        assert [m for _, m in arrived(theirs, reader, kinds)] == list(range(100))
        assert kinds == [USERS]  # one frame for the burst
        port.post_message("after")  # the writer has run: the next one goes at once again
        assert [m for _, m in arrived(theirs, reader)] == ["after"]


async def test_a_conversation_never_waits_for_the_writer() -> None:
    """One frame per step (a ping-pong) is always written at once, however long it goes on."""
    async with linked() as (_, (port, _), theirs):
        reader = frames.Reader()
        for n in range(3 * IN_A_ROW):
            port.post_message(n)
            assert [m for _, m in arrived(theirs, reader)] == [n]
            await trio.testing.wait_all_tasks_blocked()  # the writer runs when it is woken


async def test_frames_of_different_ports_keep_the_order_they_were_sent_in() -> None:
    async with linked() as (_, (a, b), theirs):
        await trio.testing.wait_all_tasks_blocked()
        reader = frames.Reader()
        sent = []
        for n in range(50):
            port = (a, b)[n % 3 == 0]
            port.post_message(n)
            sent.append(n)
            if n % 7 == 0:
                await trio.lowlevel.checkpoint()
        await trio.testing.wait_all_tasks_blocked()
        assert [m for _, m in arrived(theirs, reader)] == sent


async def test_flush_waits_for_the_burst_to_be_written() -> None:
    async with linked() as (link, (port, _), theirs):
        await trio.testing.wait_all_tasks_blocked()
        for n in range(10):
            port.post_message(n)
        await link.flush()
        assert [m for _, m in arrived(theirs, frames.Reader())] == list(range(10))
