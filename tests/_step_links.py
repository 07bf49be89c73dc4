"""Links between nodes of one run whose frames wait until the test delivers them, one at a
time: what sockets that split their reads between any two frames do, made deterministic.

They batch as a process link that falls behind does, always: a message with no ports and no
shared buffers joins the USERS frame waiting last in the link if it is the next of that
channel's, and starts one otherwise; so every frame kind meets every other in any order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, final

from actors._wire import frames
from actors._wire.fds import Fds
from actors._wire.frames import USERS
from actors._wire.node import Node


@final
class StepLink:
    """One node's side of a link: `pending` holds what the other side sent it, which `step()`
    hands to the node one frame at a time."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.other: StepLink | None = None
        self.pending: deque[tuple[bytes | list[Any], Fds | None]] = deque()

    def send(self, frame: bytes, fds: Fds | None = None) -> None:
        assert self.other is not None
        self.other.pending.append((frame, fds))

    def send_user(
        self, dst: int, src: int, cid: int, end: int, seq: int, payload: bytes, ask: bool
    ) -> None:
        assert self.other is not None
        pending = self.other.pending
        if pending:
            last = pending[-1][0]
            if type(last) is list and last[:2] == [dst, cid] and last[2] == end:
                first, payloads, asks = last[4], last[5], last[6]
                if seq == first + len(payloads):
                    if ask:
                        asks.append(len(payloads))
                    payloads.append(payload)
                    return
        pending.append(([dst, cid, end, src, seq, [payload], [0] if ask else []], None))

    def close(self) -> None:
        pass

    def step(self) -> None:
        assert self.other is not None
        frame, fds = self.pending.popleft()
        if type(frame) is list:
            dst, cid, end, src, first, payloads, asks = frame
            frame = frames.encode(dst, src, USERS, cid, end, first, payloads, asks)
        assert type(frame) is bytes
        self.node.receive(frame, self.other.node.name, fds)


def step_tree(parents: Sequence[int | None]) -> tuple[list[Node], list[StepLink]]:
    """Nodes linked as a tree (`parents[i]` is node i's parent), with every link's two sides,
    and the routes already known."""
    nodes = [Node() for _ in parents]
    links: list[StepLink] = []
    for child, parent in enumerate(parents):
        if parent is None:
            continue
        down, up = StepLink(nodes[parent]), StepLink(nodes[child])
        down.other, up.other = up, down
        nodes[parent].add_link(nodes[child].name, down)
        nodes[child].add_link(nodes[parent].name, up, parent=True)
        links += [down, up]
    pump(links)
    return nodes, links


def pump(links: Sequence[StepLink]) -> None:
    """Deliver every frame, until none is left anywhere."""
    while any(link.pending for link in links):
        for link in links:
            while link.pending:
                link.step()


def step_pair() -> tuple[Node, Node, Callable[[], None], StepLink]:
    """Two linked nodes, `pump()` for both ways, and the second node's side of the link (to
    deliver what comes to it one frame at a time)."""
    nodes, links = step_tree([None, 0])
    return nodes[0], nodes[1], lambda: pump(links), links[1]
