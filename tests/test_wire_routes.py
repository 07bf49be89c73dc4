"""Ports across nodes (the routing of `actors._wire.node`), on in-memory links in one run.

A fuzzer runs random programs over a tree of nodes: channels whose ends move from node to
node (one end or both, several hops, back home, while the other end keeps posting), posts,
closes, and nodes that are lost. Then every direction must have delivered exactly what was
posted, in order, and the close after everything; a port whose peer's node was lost gets its
close after what had arrived, and nothing it never got. Every third message carries a buffer
in shared memory (it travels as an fd): it arrives whole, and no fd is left open afterwards.
"""

from __future__ import annotations

import datetime
import gc
import os
import random
from typing import Any

import pytest
import trio
import trio.testing
from _step_links import pump, step_pair, step_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import ArrayBuffer, DataCloneError, MessageChannel, MessagePort
from actors._buffers import SHARED_MEMORY_THRESHOLD
from actors._wire.memory import MemoryLink, bridge, link_nodes
from actors._wire.node import Node

EXAMPLES = int(os.environ.get("ACTORS_FUZZ_EXAMPLES", "200"))
PARENTS = [None, 0, 0, 1]  # node i's parent: a tree of four nodes, one two levels down
NODES = len(PARENTS)
CHANNELS = 2


class World:
    """Four linked nodes, a carrier channel between every two of them, and the channels under
    test, whose ends are wherever the program moved them."""

    def __init__(self, nursery: trio.Nursery, buffer_every: int = 3) -> None:
        self.buffer_every = buffer_every  # every this many messages carries a large buffer
        self.forwards_left = 0  # forwards the nodes still kept once every port was closed
        self.nodes = [Node() for _ in range(NODES)]
        self.links: dict[int, tuple[MemoryLink, MemoryLink]] = {}
        for child, parent in enumerate(PARENTS):
            if parent is not None:
                self.links[child] = link_nodes(self.nodes[parent], self.nodes[child], nursery)
        self.carriers: dict[tuple[int, int], tuple[MessagePort, MessagePort]] = {}
        self.alive = [True] * NODES
        # each end of each channel: (node, port) where it is, or ("flight", i, j) in between
        self.where: dict[tuple[int, int], Any] = {}
        self.posted: dict[tuple[int, int], list[int]] = {}
        self.got: dict[tuple[int, int], list[int]] = {}
        self.closed: set[tuple[int, int]] = set()
        self.seq = 0
        self.in_flight: dict[tuple[int, int], list[tuple[int, int]]] = {
            (i, j): [] for i in range(NODES) for j in range(NODES) if i != j
        }
        for c in range(CHANNELS):
            channel = MessageChannel()
            for side, port in enumerate((channel.port1, channel.port2)):
                self.where[c, side] = (0, port)  # made on node 0 (its ends move from there)
                self.posted[c, side] = []
                self.got[c, side] = []

    async def bridge_all(self) -> None:
        """A carrier between every two nodes, once each node knows the routes to the others
        (a node learns another's name only after its route, as the routes go first)."""
        await trio.testing.wait_all_tasks_blocked()
        for i in range(NODES):
            for j in range(NODES):
                if i != j:
                    self.carriers[i, j] = bridge(self.nodes[i], self.nodes[j])


def programs() -> st.SearchStrategy[list[tuple[str, int, int, int]]]:
    op = st.tuples(
        st.sampled_from(["post"] * 4 + ["move"] * 3 + ["land", "close", "settle"]),
        st.integers(0, CHANNELS - 1),
        st.integers(0, 1),
        st.integers(0, NODES - 1),
    )
    return st.lists(op, max_size=30)


async def run(
    program: list[tuple[str, int, int, int]], kill: int | None, buffer_every: int = 3
) -> World:
    async with trio.open_nursery() as nursery:
        world = World(nursery, buffer_every)
        await world.bridge_all()
        for action, c, side, target in program:
            await step(world, action, c, side, target)
        # land everything still in flight, and let every frame settle
        for (i, j), flights in world.in_flight.items():
            while flights:
                await land(world, i, j)
        await trio.testing.wait_all_tasks_blocked()
        if kill is not None:
            await lose(world, kill)
        await drain(world)
        for port_pair in world.carriers.values():
            for port in port_pair:
                port.close()
        await trio.testing.wait_all_tasks_blocked()
        world.forwards_left = sum(len(node.forwards) for node in world.nodes)
        nursery.cancel_scope.cancel()
    return world


async def step(world: World, action: str, c: int, side: int, target: int) -> None:
    place = world.where[c, side]
    if action == "settle":
        await trio.testing.wait_all_tasks_blocked()
        return
    if place[0] == "flight" or (c, side) in world.closed:
        if action == "land" and place[0] == "flight":
            await land(world, place[1], place[2])
        return
    node, port = place
    if action == "post":
        for _ in range(1 + target % 3):
            world.seq += 1
            if world.seq % world.buffer_every:
                port.post_message(world.seq)
            else:  # with a buffer, which goes as an fd
                buf = ArrayBuffer(SHARED_MEMORY_THRESHOLD)
                with buf.view() as view:
                    view[:8] = world.seq.to_bytes(8, "little")
                port.post_message((world.seq, buf), [buf])
            if (c, 1 - side) not in world.closed:
                world.posted[c, side].append(world.seq)
    elif action == "move" and target != node:
        world.carriers[node, target][0].post_message((c, side), [port])
        world.where[c, side] = ("flight", node, target)
        world.in_flight[node, target].append((c, side))
    elif action == "close":
        port.close()
        world.closed.add((c, side))


async def land(world: World, i: int, j: int) -> None:
    c, side = world.in_flight[i, j].pop(0)
    event = await world.carriers[i, j][1].receive()
    assert list(event.data) == [c, side]
    world.where[c, side] = (j, event.ports[0])


async def lose(world: World, node: int) -> None:
    """Break every link of `node` (as if its process died) and let the news spread."""
    for child, links in world.links.items():
        if child == node or PARENTS[child] == node:
            links[0].close()
    for child in range(NODES):  # its subtree goes with it, as children die with their parent
        ancestor: int | None = child
        while ancestor is not None and ancestor != node:
            ancestor = PARENTS[ancestor]
        if ancestor == node:
            world.alive[child] = False
    await trio.testing.wait_all_tasks_blocked()


async def drain(world: World) -> None:
    """Receive what was posted to each open end; then close one end of each channel that is
    still whole, and the other must see the close after everything."""
    for (c, side), place in world.where.items():
        if (c, side) in world.closed or place[0] == "flight" or not world.alive[place[0]]:
            continue
        port = place[1]
        expected = len(world.posted[c, 1 - side])
        while len(world.got[c, 1 - side]) < expected:
            with trio.move_on_after(1) as scope:
                try:
                    event = await port.receive()
                except trio.EndOfChannel:
                    break
            assert not scope.cancelled_caught, f"end {(c, side)} waits: a message was lost"
            world.got[c, 1 - side].append(unpacked(event.data))
    for (c, side), place in world.where.items():  # a peer lost: its close came, after all
        peer = world.where[c, 1 - side]
        if (
            (c, side) not in world.closed
            and place[0] != "flight"
            and world.alive[place[0]]
            and peer[0] != "flight"
            and not world.alive[peer[0]]
        ):
            await expect_close(place[1], f"end {(c, side)}, after its peer's loss")
            world.closed.add((c, side))
    for c in range(CHANNELS):
        ends = [world.where[c, side] for side in (0, 1)]
        if any(
            (c, side) in world.closed or ends[side][0] == "flight" or not world.alive[ends[side][0]]
            for side in (0, 1)
        ):
            continue
        ends[0][1].close()
        world.closed.add((c, 0))
        await expect_close(ends[1][1], f"channel {c}")
    for place in world.where.values():
        if place[0] != "flight":
            place[1].close()


def unpacked(data: Any) -> int:
    """The number a message carries (checked against its buffer's, if it has one)."""
    if type(data) is int:
        return data
    seq, buf = data
    with buf.view() as view:
        assert int.from_bytes(view[:8], "little") == seq
        assert len(view) == SHARED_MEMORY_THRESHOLD
    return int(seq)


_LAST_COUNT = [-1]


def fd_count(expected: int | None = None) -> int:
    """This process's open fds, counted again after a garbage collection if not `expected`
    (by default, the last count: so examples that leave nothing behind collect nothing)."""
    count = len(os.listdir("/proc/self/fd"))
    if count != (_LAST_COUNT[0] if expected is None else expected):
        gc.collect()
        count = len(os.listdir("/proc/self/fd"))
    _LAST_COUNT[0] = count
    return count


async def expect_close(port: MessagePort, what: str) -> None:
    """The next thing `port` gets is its close (and it comes)."""
    with trio.move_on_after(1) as scope:
        try:
            event = await port.receive()
        except trio.EndOfChannel:
            return
        raise AssertionError(f"{what}: {event.data} came after everything")
    assert not scope.cancelled_caught, f"{what}: the close never came"


def check(world: World, kill: int | None) -> None:
    for (c, side), posted in world.posted.items():
        got = world.got[c, side]
        receiver = world.where[c, 1 - side]
        if (c, 1 - side) in world.closed or receiver[0] == "flight":
            assert got == posted[: len(got)]
            continue
        sender = world.where[c, side]
        if not world.alive[receiver[0]] or (sender[0] != "flight" and not world.alive[sender[0]]):
            assert got == posted[: len(got)], f"{(c, side)}: out of order after a loss"
            continue
        assert got == posted, f"direction {(c, side)}: posted {posted}, got {got}"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(programs(), st.one_of(st.none(), st.integers(1, NODES - 1)))
def test_moving_ends_across_nodes_keep_every_direction_in_order(
    program: list[tuple[str, int, int, int]], kill: int | None
) -> None:
    """Posts, moves of one end or both, closes and a lost node: each direction delivers what
    was posted, in order, and the close comes after it; no fd is left open."""
    before = fd_count()
    world = trio.run(run, program, kill, clock=trio.testing.MockClock(autojump_threshold=0))
    check(world, kill)
    del world
    assert fd_count(before) == before, "a buffer's fd was left open"


async def test_a_port_moves_parent_a_b_parent_while_its_peer_posts() -> None:
    """The issue's journey: parent -> A -> B -> parent, the peer posting at every step, and a
    close by the peer during the last hop: everything arrives, in order, then the close."""
    async with trio.open_nursery() as nursery:
        parent, a, b = Node(), Node(), Node()
        link_nodes(parent, a, nursery)
        link_nodes(parent, b, nursery)
        await trio.testing.wait_all_tasks_blocked()  # the routes are known
        to_a, at_a = bridge(parent, a)
        a_to_b, at_b = bridge(a, b)
        b_home, at_home = bridge(b, parent)
        channel = MessageChannel()
        sender, traveller = channel.port1, channel.port2
        n = 0

        def post(count: int) -> None:
            nonlocal n
            for _ in range(count):
                n += 1
                sender.post_message(n)

        post(3)
        to_a.post_message("go", [traveller])
        post(3)
        traveller = (await at_a.receive()).ports[0]
        post(3)
        a_to_b.post_message("go", [traveller])
        post(3)
        traveller = (await at_b.receive()).ports[0]
        post(3)
        b_home.post_message("go", [traveller])
        post(3)
        sender.close()  # during the last hop
        traveller = (await at_home.receive()).ports[0]
        got = [event.data async for event in traveller]  # ends at the close
        assert got == list(range(1, n + 1))
        for port in (to_a, at_a, a_to_b, at_b, b_home, at_home, traveller):
            port.close()
        await trio.testing.wait_all_tasks_blocked()
        for node in (parent, a, b):
            assert not node.forwards, f"{node} keeps forwards it no longer needs"
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("hops", [1, 2, 3])
async def test_both_ends_moving_at_once_still_talk(hops: int) -> None:
    """Both ends of a channel leave their nodes at the same time, several times: they find
    each other, and every message arrives in order."""
    async with trio.open_nursery() as nursery:
        nodes = [Node() for _ in range(3)]
        link_nodes(nodes[0], nodes[1], nursery)
        link_nodes(nodes[0], nodes[2], nursery)
        await trio.testing.wait_all_tasks_blocked()  # the routes are known
        carriers = {
            (i, j): bridge(nodes[i], nodes[j]) for i in range(3) for j in range(3) if i != j
        }
        channel = MessageChannel()
        ends = [(0, channel.port1), (0, channel.port2)]
        sent: list[list[int]] = [[], []]
        for hop in range(hops):
            for side in (0, 1):
                here, port = ends[side]
                for k in range(3):
                    port.post_message(hop * 10 + k)
                    sent[side].append(hop * 10 + k)
            flights = []
            for side in (0, 1):
                here, port = ends[side]
                there = (here + 1 + side) % 3
                carriers[here, there][0].post_message(side, [port])
                flights.append((side, here, there))
            for side, here, there in flights:
                ends[side] = (there, (await carriers[here, there][1].receive()).ports[0])
        got: list[list[int]] = [[], []]
        for side in (0, 1):
            port = ends[1 - side][1]
            for _ in sent[side]:
                got[side].append((await port.receive()).data)
        assert got == sent
        for pair in carriers.values():
            for port in pair:
                port.close()
        for _, port in ends:
            port.close()
        nursery.cancel_scope.cancel()


async def test_an_end_back_where_it_once_left_leaves_no_forward_there() -> None:
    """A port moved over a channel whose two ends are both on its node comes back at once: the
    forward it left is gone, so when it closes while its peer still posts to that node, what
    comes is dropped (not passed to this node again and again), and the peer gets its close."""
    async with trio.open_nursery() as nursery:
        p, c = Node(), Node()
        link_nodes(p, c, nursery)
        await trio.testing.wait_all_tasks_blocked()  # the routes are known
        at_p, at_c = bridge(p, c)
        out, back = bridge(p, p)  # both ends on p, talking through p's node
        out.post_message("take", [at_p])
        assert not p.forwards
        core = back._core
        assert core is not None
        moved = core.queue.popleft()[1][0]  # at once: C has not heard of the move yet
        moved.close()
        at_c.post_message("to the closed end")
        with trio.fail_after(1):
            with pytest.raises(trio.EndOfChannel):
                await at_c.receive()
        for port in (out, back):
            port.close()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("wired", [False, True])
async def test_both_ends_in_one_message_still_talk(wired: bool) -> None:
    """Both ends of a channel leave for another node in one message (a channel made here, or
    one whose ends already talk through the node): there they talk, both ways, and close.

    Moving the second end tells the first one where it went (`MOVED`), and the first one is
    in that very message: the news must not reach the other node before the end it is for
    (it was taken for news of an end that is gone, and the first end kept posting to a
    forward that was no longer there: its messages were lost)."""
    async with trio.open_nursery() as nursery:
        a, b = Node(), Node()
        link_nodes(a, b, nursery)
        await trio.testing.wait_all_tasks_blocked()  # the routes are known
        to_b, at_b = bridge(a, b)
        to_a, at_a = bridge(b, a)
        channel = MessageChannel()
        ends = [channel.port1, channel.port2]
        if wired:  # to b and back: each end's peer is a RemoteEnd here, through the node
            to_b.post_message("there", ends)
            to_a.post_message("back", (await at_b.receive()).ports)
            ends = list((await at_a.receive()).ports)
        to_b.post_message("both", ends)
        first, second = (await at_b.receive()).ports
        first.post_message("to second")
        second.post_message("to first")
        with trio.fail_after(1):
            assert (await second.receive()).data == "to second"
            assert (await first.receive()).data == "to first"
        first.close()
        with trio.fail_after(1), pytest.raises(trio.EndOfChannel):
            await second.receive()
        for port in (to_b, at_b, to_a, at_a, second):
            port.close()
        await trio.testing.wait_all_tasks_blocked()
        for node in (a, b):
            assert not node.forwards, f"{node} keeps forwards it no longer needs"
        nursery.cancel_scope.cancel()


class _OddZone(datetime.tzinfo):
    """A tzinfo that clone copies in-process, but the wire cannot carry."""

    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(hours=1)

    def dst(self, dt: datetime.datetime | None) -> None:
        return None


async def test_a_post_the_wire_refuses_detaches_nothing() -> None:
    """A message clone accepts but the wire cannot carry, posted to a peer on another node
    with a port and a buffer in its transfer list: `DataCloneError`, and nothing detached
    (D3); the channel and the port still work."""
    async with trio.open_nursery() as nursery:
        a, b = Node(), Node()
        link_nodes(a, b, nursery)
        await trio.testing.wait_all_tasks_blocked()  # the routes are known
        here, there = bridge(a, b)
        channel = MessageChannel()
        buffer = ArrayBuffer(b"kept")
        when = datetime.datetime(2020, 1, 1, tzinfo=_OddZone())
        with pytest.raises(DataCloneError, match="tzinfo"):
            here.post_message({"when": when}, [channel.port1, buffer])
        assert not channel.port1.statistics().transferred
        assert not buffer.detached
        here.post_message("then", [channel.port1, buffer])
        with trio.fail_after(1):
            event = await there.receive()
        assert event.data == "then"
        moved = event.ports[0]
        channel.port2.post_message("still entangled")
        with trio.fail_after(1):
            assert (await moved.receive()).data == "still entangled"
        for port in (here, there, moved, channel.port2):
            port.close()
        nursery.cancel_scope.cancel()


async def test_a_port_moved_within_its_node_leaves_no_forward() -> None:
    """A port whose peer is on another node, posted through a channel whose two ends are on
    its own node (the port stays where it is): it still talks both ways, and no forward is
    left behind (one was, pointing at its own node, for ever: its MOVED_ACK was taken for
    the port's own)."""
    async with trio.open_nursery() as nursery:
        a, b = Node(), Node()
        link_nodes(a, b, nursery)
        await trio.testing.wait_all_tasks_blocked()  # the routes are known
        to_b, at_b = bridge(a, b)
        loop_in, loop_out = bridge(b, b)
        channel = MessageChannel()
        here = channel.port1
        to_b.post_message("go", [channel.port2])
        there = (await at_b.receive()).ports[0]
        here.post_message(1)
        loop_in.post_message("stay", [there])
        there = (await loop_out.receive()).ports[0]
        here.post_message(2)
        there.post_message("back")
        with trio.fail_after(1):
            assert [(await there.receive()).data for _ in range(2)] == [1, 2]
            assert (await here.receive()).data == "back"
        await trio.testing.wait_all_tasks_blocked()
        for node in (a, b):
            assert not node.forwards, f"{node} keeps forwards it no longer needs"
        for port in (to_b, at_b, loop_in, loop_out, here, there):
            port.close()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("buffer_every", [1, 10**9], ids=["buffers", "numbers"])
@pytest.mark.parametrize("close", [False, True], ids=["open", "peer closes"])
def test_a_forward_outlives_the_messages_still_coming_through_an_older_one(
    buffer_every: int, close: bool
) -> None:
    """An end moves 3 -> 0 while its peer (on 0) posts, so the peer's messages come back
    through the forward on 3 late, and the next ones arrive early; then it moves on, 0 -> 2,
    before those late ones are in (its peer closing first, or not). The forward on 0 must
    wait for them (the peer's MOVED_ACK, or its CLOSE, only says how many it sent), not go at
    once and drop them; and once they passed it goes."""
    program = [
        ("move", 0, 1, 3),
        ("land", 0, 1, 0),
        ("post", 0, 0, 2),
        ("move", 0, 1, 0),
        ("land", 0, 1, 0),
        ("post", 0, 0, 2),
        *([("close", 0, 0, 0)] if close else []),
        ("move", 0, 1, 2),
        ("land", 0, 1, 0),
        ("settle", 0, 0, 0),
    ]
    before = fd_count()
    clock = trio.testing.MockClock(autojump_threshold=0)
    world = trio.run(run, program, None, buffer_every, clock=clock)
    check(world, None)
    assert world.got[0, 0] == list(range(1, 7))
    assert world.forwards_left == 0, "a forward was left behind"
    del world
    assert fd_count(before) == before


def test_an_end_back_where_it_was_leaves_no_forward() -> None:
    """An end moves 0 -> 1 and back to 0: the forward on 0 goes when the end is back (what
    comes there is the end's again), and the one on 1 once its MOVED_ACK came."""
    program = [
        ("move", 1, 0, 3),
        ("land", 1, 0, 0),
        ("move", 1, 1, 1),
        ("land", 1, 1, 0),
        ("move", 1, 1, 0),
    ]
    clock = trio.testing.MockClock(autojump_threshold=0)
    world = trio.run(run, program, None, clock=clock)
    check(world, None)
    assert world.forwards_left == 0, "a forward was left behind"


async def test_ends_back_before_the_news_of_their_move_still_talk() -> None:
    """Both ends of a channel go to node B and, before B has read the news of their move
    (it comes in a frame of its own), come back: they talk, and no forward is left.

    The old news, passed on by a forward, reached an end after newer news and sent it back
    to where its peer had been (its messages were dropped there); and the acknowledgement
    for a forward at a node the end had come back to was taken for the end's own."""
    a, b, pump, at_b = step_pair()
    a_out, b_in = bridge(a, b)
    b_out, a_in = bridge(b, a)
    channel = MessageChannel()
    a_out.post_message("there", [channel.port1, channel.port2])
    at_b.step()  # the message, not yet the news that follows it
    b_out.post_message("back", list((await b_in.receive()).ports))
    pump()
    first, second = (await a_in.receive()).ports
    first.post_message("to second")
    second.post_message("to first")
    pump()
    assert second.statistics().queued == first.statistics().queued == 1
    for port in (first, second, a_out, b_in, b_out, a_in):
        port.close()
    pump()
    for node in (a, b):
        assert not node.forwards, f"{node} keeps forwards it no longer needs"
        assert not node.ends, f"{node} keeps ends that are closed"


async def test_a_forward_stays_until_what_was_sent_the_old_way_has_passed() -> None:
    """Both ends of a channel on node A (talking through A), moved to P in one message; P
    moves one on to B and posts on the other at once, before P has read the news of the first
    move: that message goes the old way, P -> A -> P -> B, through two forwards. It arrives,
    whatever the order of the frames after (40 orders), and the forwards go once it has.

    A forward went as soon as the peer said how far it had sent (MOVED_ACK), while a message
    was still on its way to it through an older forward: dropped there (in 5 of these
    orders)."""
    for seed in range(40):
        await _the_old_way(random.Random(seed))


async def _the_old_way(order: random.Random) -> None:
    (p, a, b), links = step_tree([None, 0, 0])
    to_p, at_p = bridge(a, p)
    to_b, at_b = bridge(p, b)
    loop_in, loop_out = bridge(a, a)
    channel = MessageChannel()
    loop_in.post_message("within A", [channel.port1])
    first = (await loop_out.receive()).ports[0]
    to_p.post_message("both", [first, channel.port2])
    next(link for link in links if link.pending).step()  # the message, not the news after it
    first, second = (await at_p.receive()).ports
    to_b.post_message("on", [second])
    first.post_message("the old way")
    while waiting := [link for link in links if link.pending]:
        order.choice(waiting).step()
    second = (await at_b.receive()).ports[0]
    assert second.statistics().queued == 1, "the message sent the old way was lost"
    assert (await second.receive()).data == "the old way"
    for port in (first, second, to_p, at_p, to_b, at_b, loop_in, loop_out):
        port.close()
    pump(links)
    for node in (p, a, b):
        assert not node.forwards, f"{node} keeps forwards it no longer needs"


def test_a_stale_moved_ack_does_not_retire_a_newer_forward() -> None:
    """An end leaves node 0, comes back, and leaves again; the acknowledgement of its first
    move (`MOVED_ACK`) reaches node 0 after it left the second time. It names the move it
    answers (`hops`), so the newer forward does not take it as its own and go: the next
    message for the end, still sent to node 0, passes on (it was dropped there, in about a
    quarter of the runs: the order of the links' tasks decides). Found by the fds fuzzer."""
    program = [
        ("move", 0, 0, 0),
        ("land", 0, 0, 0),
        ("move", 0, 1, 0),
        ("land", 0, 1, 0),
        ("move", 1, 0, 3),
        ("land", 1, 0, 0),
        ("move", 1, 1, 2),
        ("land", 1, 1, 0),
        ("post", 1, 0, 0),
        ("move", 1, 1, 0),
        ("land", 1, 1, 0),
        ("move", 1, 1, 1),
    ]
    for _ in range(40):  # each order of the tasks the scheduler picks
        before = fd_count()
        world = trio.run(run, program, None, 1, clock=trio.testing.MockClock(autojump_threshold=0))
        check(world, None)
        assert world.forwards_left == 0, "a forward was left behind"
        del world
        assert fd_count(before) == before
