"""Links between nodes of one run whose frames wait until the test delivers them, one at a
time: what sockets that split their reads between any two frames do, made deterministic."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import final

from actors._wire.fds import Fds
from actors._wire.node import Node


@final
class StepLink:
    """One node's side of a link: `pending` holds what the other side sent it, which `step()`
    hands to the node one frame at a time."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.other: StepLink | None = None
        self.pending: deque[tuple[bytes, Fds | None]] = deque()

    def send(self, frame: bytes, fds: Fds | None = None) -> None:
        assert self.other is not None
        self.other.pending.append((frame, fds))

    def close(self) -> None:
        pass

    def step(self) -> None:
        assert self.other is not None
        frame, fds = self.pending.popleft()
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
