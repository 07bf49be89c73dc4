"""Links between nodes of one trio run, through memory: for tests, and as the smallest example
of what a transport does (frames and their fds out in order, in to `Node.receive`, loss
reported). Fds cross as a socket passes them: the receiver gets new fds (duplicates), and the
sender's are closed once sent."""

from __future__ import annotations

import os
from collections import deque
from typing import final

import trio

from .._log import logger
from .._ports import MessagePort
from .._queue import PortCore
from .fds import Fds
from .frames import FrameError
from .node import Node, RemoteEnd, new_name

__all__ = ["MemoryLink", "bridge", "link_nodes"]


@final
class MemoryLink:
    """One side of a link between two nodes of this run: its node sends through it, and it
    receives, in a task of its own (as if from a socket), what the other side sends."""

    __slots__ = ("_arrived", "_frames", "_open", "node", "other")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.other: MemoryLink | None = None
        self._frames: deque[tuple[bytes, Fds | None]] = deque()  # sent, not yet received
        self._arrived = trio.Event()
        self._open = True

    def send(self, frame: bytes, fds: Fds | None = None) -> None:
        other = self.other
        if not self._open or other is None or not other._open:
            if fds:
                fds.close()
            return
        if fds:
            sent = fds.take_all()
            fds = Fds(os.dup(fd) for fd in sent)
            for fd in sent:
                os.close(fd)
        other._frames.append((frame, fds))
        other._arrived.set()

    def close(self) -> None:
        """Break the link (as a process dying breaks its socket): both nodes lose the other."""
        for side in (self, self.other):
            if side is not None and side._open:
                side._open = False
                side._arrived.set()

    async def run(self) -> None:
        """Receive what the other side sends until the link breaks."""
        other = self.other
        assert other is not None
        node, neighbour = self.node, other.node.name
        try:
            while True:
                while self._frames:
                    frame, fds = self._frames.popleft()
                    try:
                        node.receive(frame, neighbour, fds)
                    except FrameError as exc:
                        logger(node=node.name).warning("link_broken", reason=str(exc))
                        self.close()
                        break
                if not self._open:
                    return
                await self._arrived.wait()
                self._arrived = trio.Event()
        finally:
            self._open = False
            while self._frames:  # never to be received: their fds go
                _, fds = self._frames.popleft()
                if fds:
                    fds.close()
            node.link_lost(neighbour)


def link_nodes(parent: Node, child: Node, nursery: trio.Nursery) -> tuple[MemoryLink, MemoryLink]:
    """Link two nodes (`parent`'s link is the route to every node `child` does not know)."""
    down, up = MemoryLink(parent), MemoryLink(child)  # each side: its node sends through it
    down.other, up.other = up, down
    parent.add_link(child.name, down)
    child.add_link(parent.name, up, parent=True)
    nursery.start_soon(down.run)
    nursery.start_soon(up.run)
    return down, up


def bridge(a: Node, b: Node) -> tuple[MessagePort, MessagePort]:
    """A channel whose first port lives on node `a` and second on node `b` (they must be
    linked, directly or not): how two nodes start talking (Mojo merges ports for this)."""
    cid = new_name()
    core_a, core_b = PortCore(a.token), PortCore(b.token)
    core_a.peer = RemoteEnd(a, core_a, cid, 0, b.name)
    core_b.peer = RemoteEnd(b, core_b, cid, 1, a.name)
    return MessagePort._create(core_a), MessagePort._create(core_b)
