"""Routes under any order of frames: ports moving over a tree of nodes whose links deliver
one frame at a time, in an order the program picks.

`test_wire_routes.py` delivers everything at once, each time a link's task runs; between real
processes a socket read can end between any two frames, and the code of a node runs between
two reads. Here every frame waits in its link until the program delivers it, so the programs
interleave deliveries with posts, moves of one end or of both in one message (to another node,
back, or within a node), landings and closes in every order, deterministically. Then every
frame is delivered (in an order drawn at random from the example's seed) and every end lands:
each direction must have delivered what was posted, in order, and the close after it; and no
node may keep a forward or an end of a channel that is closed (a forward goes once nothing
more can come its way).

`ACTORS_FUZZ_EXAMPLES=3000` runs a long search.
"""

from __future__ import annotations

import os
import random
from typing import Any

import trio
from _step_links import pump, step_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import MessageChannel, MessagePort
from actors._wire.memory import bridge
from actors._wire.node import Node

EXAMPLES = int(os.environ.get("ACTORS_FUZZ_EXAMPLES", "300"))
PARENTS = [None, 0, 0, 1]  # a tree of four nodes, one two levels down
NODES = len(PARENTS)
CHANNELS = 1
End = tuple[int, int]  # (channel, side)
Op = tuple[str, int, int, int]


class World:
    """The nodes, their step links, a carrier from every node to every node (itself too),
    and where each end of the channels under test is."""

    def __init__(self, made_at: list[int], seed: int) -> None:
        self.nodes, self.links = step_tree(PARENTS)
        self.random = random.Random(seed)  # the order of the frames after the program
        self.carriers: dict[tuple[int, int], tuple[MessagePort, MessagePort]] = {
            (i, j): bridge(self.nodes[i], self.nodes[j]) for i in range(NODES) for j in range(NODES)
        }
        self.baseline = [len(node.ends) for node in self.nodes]
        # an end: ("at", node, port), ("flight", from, to), or ("closed",)
        self.where: dict[End, tuple[Any, ...]] = {}
        self.posted: dict[End, list[int]] = {}  # by sender
        self.got: dict[End, list[Any]] = {}  # by receiver: seqs, then "end"
        self.closed_early: set[End] = set()
        self.seq = 0
        for c, node in enumerate(made_at):
            channel = MessageChannel()
            for side, port in enumerate((channel.port1, channel.port2)):
                self.where[c, side] = ("at", node, port)
                self.posted[c, side] = []
                self.got[c, side] = []

    def at(self, end: End) -> tuple[int, MessagePort] | None:
        place = self.where[end]
        return (place[1], place[2]) if place[0] == "at" else None

    def move(self, ends: list[End], to: int) -> None:
        places = [self.at(end) for end in ends]
        if any(p is None for p in places) or len({p[0] for p in places if p}) != 1:
            return
        here = places[0][0] if places[0] else 0
        self.carriers[here, to][0].post_message(ends, [p[1] for p in places if p])
        for end in ends:
            self.where[end] = ("flight", here, to)

    async def land(self, i: int, j: int) -> None:
        carrier = self.carriers[i, j][1]
        while carrier.statistics().queued:
            event = await carrier.receive()
            for (c, side), port in zip(event.data, event.ports, strict=True):
                assert self.where[c, side] == ("flight", i, j)
                self.where[c, side] = ("at", j, port)

    async def read(self, end: End) -> None:
        place = self.at(end)
        if place is None:
            return
        port = place[1]
        while port.statistics().queued:
            self.got[end].append((await port.receive()).data[1])

    async def step(self, op: str, a: int, b: int, n: int) -> None:
        end = (a % CHANNELS, b % 2)
        place = self.at(end)
        if op == "deliver":  # from one of the links that have frames waiting
            waiting = [link for link in self.links if link.pending]
            if waiting:
                link = waiting[a % len(waiting)]
                for _ in range(min(1 + n, len(link.pending))):
                    link.step()
        elif op == "land":  # at one of the carriers that have ends waiting
            waiting = [key for key, pair in self.carriers.items() if pair[1].statistics().queued]
            if waiting:
                await self.land(*waiting[a % len(waiting)])
        elif op == "read":
            await self.read(end)
        elif place is None:
            return
        elif op == "post":
            for _ in range(1 + n):
                self.seq += 1
                place[1].post_message((end, self.seq))
                self.posted[end].append(self.seq)
        elif op == "move":
            self.move([end], n)
        elif op == "move_both":
            self.move([end, (end[0], 1 - end[1])], n)
        elif op == "close":
            place[1].close()
            self.where[end] = ("closed",)
            self.closed_early.add(end)

    def pump(self) -> None:
        """Deliver every frame, one at a time from a link picked at random."""
        links = self.links
        while True:
            waiting = [link for link in links if link.pending]
            if not waiting:
                return
            self.random.choice(waiting).step()

    async def finish(self) -> None:
        """Deliver and land everything; each end reads what it has; then one end of each
        channel still whole closes and the other must get its close after everything."""
        while True:
            self.pump()
            for i in range(NODES):
                for j in range(NODES):
                    await self.land(i, j)
            if not any(link.pending for link in self.links):
                break
        for end in self.where:
            await self.read(end)
        for c in range(CHANNELS):
            for side in (0, 1):
                place = self.at((c, side))
                if place is not None and self.at((c, 1 - side)) is None:
                    await self.read_to_the_end((c, side))
            if self.at((c, 0)) is not None and self.at((c, 1)) is not None:
                self.at((c, 0))[1].close()  # type: ignore[index]
                self.where[c, 0] = ("closed",)
                self.pump()
                await self.read_to_the_end((c, 1))

    async def read_to_the_end(self, end: End) -> None:
        self.pump()
        place = self.at(end)
        assert place is not None
        await self.read(end)
        got = self.got[end]
        assert not place[1].statistics().entangled, f"end {end} got {got}, and no close"
        try:
            event = await place[1].receive()
        except trio.EndOfChannel:
            self.got[end].append("end")
        else:
            raise AssertionError(f"end {end} got {event.data} after everything, not its close")
        place[1].close()
        self.where[end] = ("closed",)

    def check(self) -> None:
        for sender, posted in self.posted.items():
            receiver = (sender[0], 1 - sender[1])
            got = self.got[receiver]
            seqs = [g for g in got if g != "end"]
            if receiver in self.closed_early:
                assert seqs == posted[: len(seqs)], f"{sender}: posted {posted}, got {got}"
            elif got and got[-1] == "end":  # it read to its close
                assert got == [*posted, "end"], f"{sender}: posted {posted}, got {got}"
            else:  # it closed first, once it had read everything
                assert got == posted, f"{sender}: posted {posted}, got {got}"

    def close_all(self) -> None:
        for pair in self.carriers.values():
            for port in pair:
                port.close()
        pump(self.links)

    def leftovers(self) -> list[tuple[Node, int, int]]:
        return [
            (node, len(node.forwards), len(node.ends) - base)
            for node, base in zip(self.nodes, self.baseline, strict=True)
            if node.forwards or len(node.ends) != base
        ]


OPERATIONS = ["deliver"] * 6 + ["post"] * 3 + ["move"] * 3 + ["land"] * 3
OPERATIONS += ["move_both", "read", "close"]
ops = st.tuples(
    st.sampled_from(OPERATIONS),
    st.integers(0, 7),
    st.integers(0, NODES - 1),
    st.integers(0, NODES - 1),
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    made_at=st.lists(st.integers(0, NODES - 1), min_size=CHANNELS, max_size=CHANNELS),
    program=st.lists(ops, max_size=80),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_order_of_frames_keeps_every_direction_and_leaves_no_route(
    made_at: list[int], program: list[Op], seed: int
) -> None:
    """Moves (one end, both, back, within a node), posts, landings, reads and closes, with
    the frames delivered in any order: every message once, in order, the close last; and once
    all is closed, no forward and no end is left on any node."""

    async def main() -> None:
        world = World(made_at, seed)
        for op in program:
            await world.step(*op)
        await world.finish()
        world.check()
        before = world.leftovers()
        world.close_all()
        assert not before, f"(node, forwards, ends) left after the channels closed: {before}"

    trio.run(main)


def test_step_links_deliver_one_frame_at_a_time() -> None:
    """The fuzzer's links hold frames until delivered (else it would test nothing new), and
    batch plain messages of one channel into one USERS frame."""

    async def main() -> None:
        nodes, links = step_tree([None, 0])
        here, there = bridge(nodes[0], nodes[1])
        carried = MessageChannel()
        here.post_message(1)
        here.post_message(2)
        here.post_message(3, [carried.port2])  # a port: a USER frame of its own
        waiting = [link for link in links if link.pending]
        assert len(waiting) == 1
        assert len(waiting[0].pending) == 2
        assert there.statistics().queued == 0
        waiting[0].step()
        assert there.statistics().queued == 2
        pump(links)
        got = [(await there.receive()) for _ in range(3)]
        assert [event.data for event in got] == [1, 2, 3]
        for port in (carried.port1, *got[2].ports):
            port.close()
        here.close()
        there.close()
        pump(links)

    trio.run(main)
