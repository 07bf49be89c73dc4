"""PortCollection: weak membership (D10), broadcasting, and the slow-member policies."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import close_ports, drops_entangled_ports

import actors
from actors import (
    Lagged,
    MessageChannel,
    MessageEvent,
    MessagePort,
    PortCollection,
    Restart,
    SlowMemberPolicy,
    open_supervisor,
)


def channels(n: int) -> list[MessageChannel]:
    return [MessageChannel() for _ in range(n)]


async def drain(port: MessagePort) -> list[object]:
    """Every message waiting at ``port`` right now."""
    got = []
    while port.statistics().queued:
        got.append((await port.receive()).data)
    return got


# -- membership ---------------------------------------------------------------------------


async def test_add_is_idempotent_and_keeps_the_first_position() -> None:
    """Re-adding does not move a port to the end (D10)."""
    pairs = channels(3)
    a, b, c = (ch.port1 for ch in pairs)
    group = PortCollection()
    for port in (a, b, a, c, b):
        group.add(port)
    assert list(group) == [a, b, c]
    assert len(group) == 3
    close_ports(pairs)


async def test_remove_and_clear_are_forgiving() -> None:
    """Removing a non-member or clearing an empty collection does nothing."""
    pairs = channels(2)
    a, b = (ch.port1 for ch in pairs)
    group = PortCollection([a])
    group.remove(b)
    group.remove(a)
    group.remove(a)
    assert list(group) == []
    group.clear()
    group.add(b)
    group.clear()
    assert len(group) == 0
    assert b not in group
    close_ports(pairs)


async def test_iterate_calls_back_in_order_on_a_snapshot() -> None:
    """``iterate`` visits members in insertion order; the callback may change membership."""
    pairs = channels(3)
    ports = [ch.port1 for ch in pairs]
    group = PortCollection(ports)
    seen: list[MessagePort] = []

    def visit(port: MessagePort) -> None:
        seen.append(port)
        group.remove(ports[2])

    group.iterate(visit)
    assert seen == ports
    assert list(group) == ports[:2]
    close_ports(pairs)


async def test_only_ports_can_be_members() -> None:
    """Anything else is a TypeError; a closed port is simply not added."""
    group = PortCollection()
    with pytest.raises(TypeError, match="MessagePorts"):
        group.add("not a port")  # type: ignore[arg-type]
    channel = MessageChannel()
    port = channel.port1
    port.close()
    group.add(port)
    assert port not in group
    close_ports(channel)


@drops_entangled_ports
async def test_members_are_held_weakly() -> None:
    """A port nothing else refers to is collected and disappears from the collection."""
    group = PortCollection()
    kept = MessageChannel()
    for _ in range(3):
        group.add(MessageChannel().port1)  # the channel and both its ports are garbage
    group.add(kept.port1)
    gc.collect()
    assert list(group) == [kept.port1]
    close_ports(kept)


@pytest.mark.parametrize(
    "how",
    [
        "closed",
        "peer closed",
        "transferred",
        pytest.param("peer collected", marks=drops_entangled_ports),
    ],
)
async def test_a_member_leaves_as_soon_as_it_or_its_peer_is_gone(how: str) -> None:
    """Closed, transferred away, or whose peer is closed or collected: not a member."""
    channel, carrier = MessageChannel(), MessageChannel()
    group = PortCollection([channel.port1])
    if how == "closed":
        channel.port1.close()
    elif how == "peer closed":
        channel.port2.close()
    elif how == "transferred":
        carrier.port1.post_message(None, transfer=[channel.port1])
    else:
        del channel._port2  # the only reference to port2
        gc.collect()
        await trio.testing.wait_all_tasks_blocked()
    assert len(group) == 0
    assert list(group) == []
    close_ports(channel.port1, carrier)


def join(group: PortCollection) -> MessagePort:
    """What a join handler does: add a member port that nothing else refers to; return the
    receiving end (its peer), which the member keeps."""
    channel = MessageChannel()
    group.add(channel.port1)
    return channel.port2


async def test_a_weak_member_nobody_holds_is_collected_with_a_warning() -> None:
    """weak=True (the default): a member only the collection refers to is collected at once:
    a ResourceWarning says so, and its peer sees EndOfChannel."""
    group = PortCollection()
    with pytest.warns(ResourceWarning, match="PortCollection\\(weak=False\\)"):
        receiver = join(group)  # the member port is collected as join() returns
    assert len(group) == 0
    with pytest.raises(trio.EndOfChannel):
        await receiver.receive()
    receiver.close()


async def test_a_strong_collection_keeps_a_member_nobody_else_holds() -> None:
    """weak=False: the collection keeps its member alive, and the member gets broadcasts."""
    group = PortCollection(weak=False)
    receiver = join(group)
    gc.collect()
    group.post_message("kept")
    assert (await receiver.receive()).data == "kept"
    assert len(group) == 1
    with pytest.warns(ResourceWarning):
        group.clear()  # lets go of the member: it is collected, still entangled
    with pytest.raises(trio.EndOfChannel):
        await receiver.receive()
    receiver.close()


@pytest.mark.parametrize("how", ["closed", "peer closed", "transferred", "removed", "cleared"])
async def test_a_strong_collection_lets_go_of_a_member_that_leaves(how: str) -> None:
    """weak=False holds a member only until it leaves: closed, transferred, its peer closed,
    removed or cleared."""
    group, carrier = PortCollection(weak=False), MessageChannel()
    channel = MessageChannel()
    member, receiver = channel.port1, channel.port2
    group.add(member)
    del channel
    held = weakref.ref(member)
    if how == "closed":
        member.close()
    elif how == "peer closed":
        receiver.close()
    elif how == "transferred":
        carrier.port1.post_message(None, transfer=[member])
    elif how == "removed":
        member.close()  # closed first, so that collecting it is no mistake
        group.remove(member)
    else:
        member.close()
        group.clear()
    del member
    assert len(group) == 0  # the collection looks at its members, and lets go of this one
    gc.collect()
    assert held() is None
    close_ports(receiver, carrier)


async def test_weak_must_be_a_bool() -> None:
    """Anything but True or False for weak is a TypeError."""
    with pytest.raises(TypeError, match="weak"):
        PortCollection(weak=None)  # type: ignore[arg-type]


# -- post_message -------------------------------------------------------------------------


async def test_post_message_gives_each_member_its_own_clone() -> None:
    """Mutable data: a separate copy per member, none of them the sender's."""
    pairs = channels(3)
    group = PortCollection(ch.port1 for ch in pairs)
    message = {"n": [1]}
    group.post_message(message)
    copies = [(await ch.port2.receive()).data for ch in pairs]
    assert copies == [message] * 3
    assert len({id(c) for c in copies} | {id(message)}) == 4
    close_ports(pairs)


async def test_immutable_payloads_are_shared_not_copied() -> None:
    """A tuple of immutables is one object for every member."""
    pairs = channels(3)
    group = PortCollection(ch.port1 for ch in pairs)
    message = ("quote", "ACME", 12.5)
    group.post_message(message)
    copies = [(await ch.port2.receive()).data for ch in pairs]
    assert all(c is message for c in copies)
    close_ports(pairs)


async def test_an_uncloneable_message_reaches_nobody() -> None:
    """Validated once, before anything is sent."""
    pairs = channels(2)
    group = PortCollection(ch.port1 for ch in pairs)
    with pytest.raises(actors.DataCloneError, match=r"message\['lock'\]"):
        group.post_message({"lock": trio.Lock()})
    assert [ch.port2.statistics().queued for ch in pairs] == [0, 0]
    assert group.statistics().sent == 0
    close_ports(pairs)


async def test_a_transfer_list_is_refused_clearly() -> None:
    """One object cannot move to many ports; an empty list is fine."""
    pair, extra = MessageChannel(), MessageChannel()
    group = PortCollection([pair.port1])
    with pytest.raises(actors.DataCloneError, match="cannot move to many ports"):
        group.post_message("x", transfer=[extra.port1])
    assert not extra.port1.statistics().transferred
    group.post_message("y", transfer=[])
    assert (await pair.port2.receive()).data == "y"
    with pytest.raises(TypeError, match="transfer must be an iterable"):  # as on a port
        group.post_message("z", transfer=1)  # type: ignore[arg-type]
    assert pair.port2.statistics().queued == 0
    close_ports(pair, extra)


async def test_statistics_count_broadcasts_and_copies() -> None:
    """``sent`` counts broadcasts, ``delivered`` the copies."""
    pairs = channels(2)
    group = PortCollection(ch.port1 for ch in pairs)
    group.post_message(1)
    await group.send(2)
    stats = group.statistics()
    assert (stats.members, stats.sent, stats.delivered) == (2, 2, 4)
    assert (stats.dropped, stats.lagged, stats.disconnected) == (0, 0, 0)
    close_ports(pairs)


# -- send() and the policies --------------------------------------------------------------


async def slow_reader(port: MessagePort, seconds: float, log: list[tuple[float, object]]) -> None:
    async for event in port:
        log.append((trio.current_time(), event.data))
        await trio.sleep(seconds)


async def test_wait_paces_the_sender_to_the_slowest_member(autojump_clock: Any) -> None:
    """WAIT: a member never has more than ``max_queued`` waiting; everyone gets everything."""
    fast, slow = MessageChannel(), MessageChannel()
    group = PortCollection([fast.port1, slow.port1], max_queued=2)
    fast_log: list[tuple[float, object]] = []
    slow_log: list[tuple[float, object]] = []
    peak = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow_reader, fast.port2, 0.0, fast_log)
        nursery.start_soon(slow_reader, slow.port2, 1.0, slow_log)
        for i in range(10):
            await group.send(i)
            peak = max(peak, slow.port2.statistics().queued)
        group.clear()
        fast.port1.close()
        slow.port1.close()
    assert [d for _, d in slow_log] == list(range(10))
    assert [d for _, d in fast_log] == list(range(10))
    assert peak <= 2
    assert slow_log[-1][0] == pytest.approx(9.0)  # one per second: the slow one set the pace


async def test_wait_stops_waiting_for_a_member_that_leaves(autojump_clock: Any) -> None:
    """A waiting send() looks again when membership changes."""
    stuck, other = MessageChannel(), MessageChannel()
    group = PortCollection([stuck.port1, other.port1], max_queued=1)
    stuck.port1.post_message("fills stuck")  # nobody reads stuck.port2
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(5)
            group.remove(stuck.port1)

        nursery.start_soon(later)
        await group.send("after")
        assert trio.current_time() == pytest.approx(5.0)
    assert await drain(other.port2) == ["after"]
    close_ports(stuck, other)


async def test_wait_stops_waiting_for_a_member_whose_peer_closes(autojump_clock: Any) -> None:
    """A slow member whose receiver goes away is no longer waited for."""
    stuck, other = MessageChannel(), MessageChannel()
    group = PortCollection([stuck.port1, other.port1], max_queued=1)
    stuck.port1.post_message("fills stuck")
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(3)
            stuck.port2.close()

        nursery.start_soon(later)
        await group.send("after")
        assert trio.current_time() == pytest.approx(3.0)
    assert len(group) == 1
    close_ports(stuck, other)


async def test_a_cancelled_send_sends_nothing(autojump_clock: Any) -> None:
    """Cancelled while waiting for room: no member got the message."""
    stuck, other = MessageChannel(), MessageChannel()
    group = PortCollection([stuck.port1, other.port1], max_queued=1)
    stuck.port1.post_message("fills stuck")
    with trio.move_on_after(1):
        await group.send("never")
    assert await drain(other.port2) == []
    assert group.statistics().sent == 0
    close_ports(stuck, other)


def watchers(port: MessagePort) -> int:
    """How many waiting ``send()`` calls watch ``port``'s queue for room."""
    core = port._core
    assert core is not None
    return len(core.drained or ())


async def test_timed_out_sends_leave_no_watcher_behind(autojump_clock: Any) -> None:
    """A send() cancelled while members are full takes its wake-up back from each of them."""
    first, second = MessageChannel(), MessageChannel()
    group = PortCollection([first.port1, second.port1], max_queued=1)
    group.post_message("fills both")
    for _ in range(100):
        with trio.move_on_after(0.01):
            await group.send("never")
    assert watchers(first.port2) == 0
    assert watchers(second.port2) == 0
    close_ports(first, second)


async def test_a_send_woken_by_a_membership_change_leaves_no_watcher(autojump_clock: Any) -> None:
    """A send() that stops waiting because the full member left does not stay watching it."""
    stuck = MessageChannel()
    group = PortCollection([stuck.port1], max_queued=1)
    group.post_message("fills stuck")
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(1)
            group.remove(stuck.port1)

        nursery.start_soon(later)
        await group.send("to nobody")
    assert watchers(stuck.port2) == 0
    close_ports(stuck)


async def test_a_member_added_while_send_waits_is_included(autojump_clock: Any) -> None:
    """Delivery happens once there is room, to the members at that moment."""
    stuck, newcomer = MessageChannel(), MessageChannel()
    group = PortCollection([stuck.port1], max_queued=1)
    group.post_message("fills stuck")
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(1)
            group.add(newcomer.port1)
            await trio.sleep(1)
            await stuck.port2.receive()

        nursery.start_soon(later)
        await group.send("both")
    assert await drain(newcomer.port2) == ["both"]
    assert await drain(stuck.port2) == ["both"]
    close_ports(stuck, newcomer)


async def test_drop_oldest_bounds_memory_and_tells_the_receiver() -> None:
    """DROP_OLDEST: the slow member keeps the newest ``max_queued``; ``Lagged`` says how many
    it lost, then the next receive goes on."""
    slow, fast = MessageChannel(), MessageChannel()
    group = PortCollection(
        [slow.port1, fast.port1], max_queued=3, policy=SlowMemberPolicy.DROP_OLDEST
    )
    fast.port2.start()
    for i in range(100):
        await group.send(i)
        assert slow.port2.statistics().queued <= 3
        assert (await fast.port2.receive()).data == i
    with pytest.raises(Lagged) as info:
        await slow.port2.receive()
    assert info.value.missed == 97
    assert isinstance(info.value, trio.TooSlowError)
    assert await drain(slow.port2) == [97, 98, 99]
    stats = group.statistics()
    assert (stats.dropped, stats.lagged, stats.disconnected) == (97, 1, 0)
    close_ports(slow, fast)


async def test_drop_oldest_applies_to_post_message_too() -> None:
    """post_message never waits, but under DROP_OLDEST the bound still holds."""
    pair = MessageChannel()
    group = PortCollection([pair.port1], max_queued=2, policy=SlowMemberPolicy.DROP_OLDEST)
    for i in range(1000):
        group.post_message(i)
    assert len(pair.port2._core.queue) == 3  # type: ignore[union-attr]  # 2 + the notice
    with pytest.raises(Lagged):
        await pair.port2.receive()
    assert await drain(pair.port2) == [998, 999]
    close_ports(pair)


async def test_a_lagged_event_goes_to_handlers() -> None:
    """Handlers get a ``"lagged"`` event whose data is the count; message-only handlers
    just skip the gap."""
    listening, plain = MessageChannel(), MessageChannel()
    group = PortCollection(
        [listening.port1, plain.port1], max_queued=2, policy=SlowMemberPolicy.DROP_OLDEST
    )
    for i in range(5):
        group.post_message(i)
    events: list[tuple[str, object]] = []
    listening.port2.add_event_listener("lagged", lambda e: events.append((e.type, e.data)))
    listening.port2.onmessage = lambda e: events.append((e.type, e.data))
    got: list[object] = []
    plain.port2.onmessage = lambda e: got.append(e.data)
    await trio.testing.wait_all_tasks_blocked()
    assert events == [("lagged", 3), ("message", 3), ("message", 4)]
    assert got == [3, 4]
    close_ports(listening, plain)


async def test_disconnect_closes_the_slow_member_and_its_peer_hears_of_it() -> None:
    """DISCONNECT: the slow member is closed; its receiver gets what it had, then
    EndOfChannel; the others carry on."""
    slow, fast = MessageChannel(), MessageChannel()
    group = PortCollection(
        [slow.port1, fast.port1], max_queued=2, policy=SlowMemberPolicy.DISCONNECT
    )
    fast.port2.start()
    for i in range(5):
        await group.send(i)
        await fast.port2.receive()
    assert list(group) == [fast.port1]
    assert await drain(slow.port2) == [0, 1]
    with pytest.raises(trio.EndOfChannel):
        await slow.port2.receive()
    assert group.statistics().disconnected == 1
    close_ports(slow, fast)


async def test_membership_changes_during_a_broadcast_loop() -> None:
    """Members joining and leaving between broadcasts get exactly the ones they were in for."""
    a, b, c = channels(3)
    group = PortCollection([a.port1, b.port1])
    group.post_message(1)
    group.remove(a.port1)
    group.add(c.port1)
    group.post_message(2)
    b.port2.close()
    group.post_message(3)
    assert await drain(a.port2) == [1]
    assert await drain(c.port2) == [2, 3]
    assert list(group) == [c.port1]
    close_ports(a, b, c)


# -- actors in groups ---------------------------------------------------------------------


async def test_an_actor_that_stops_leaves_every_group_by_itself() -> None:
    """Join by transferring a port to the owner; die; the owner's groups shrink."""
    lobby, news = PortCollection(), PortCollection()
    inbox = MessageChannel()
    joined = trio.Event()
    held: list[MessagePort] = []  # collections hold weakly: the owner keeps its members

    def join(event: MessageEvent) -> None:
        held.append(event.ports[0])
        lobby.add(event.ports[0])
        news.add(event.ports[0])
        joined.set()

    inbox.port2.onmessage = join
    crash = trio.Event()

    async def member(owner: MessagePort) -> None:
        mine = MessageChannel()
        owner.post_message("join", transfer=[mine.port2])
        await crash.wait()
        raise RuntimeError("gone")

    async with open_supervisor() as sup:
        sup.spawn(member, inbox.port1, restart=Restart.TEMPORARY)
        await joined.wait()
        assert (len(lobby), len(news)) == (1, 1)
        crash.set()
    assert (len(lobby), len(news)) == (0, 0)


async def test_drop_oldest_with_a_slow_consumer_on_the_clock(autojump_clock: Any) -> None:
    """A producer at 10 Hz, a consumer at 1 Hz: the consumer sees gaps (Lagged) and always
    the newest messages; its queue never holds more than ``max_queued``."""
    channel = MessageChannel()
    group = PortCollection([channel.port1], max_queued=3, policy=SlowMemberPolicy.DROP_OLDEST)
    seen: list[object] = []
    peak = 0

    async def consumer() -> None:
        while True:
            try:
                event = await channel.port2.receive()
            except Lagged as lag:
                seen.append(f"lagged {lag.missed}")
                continue
            except trio.EndOfChannel:
                return
            seen.append(event.data)
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        for i in range(30):  # 3 s of production
            await group.send(i)
            peak = max(peak, channel.port2.statistics().queued)
            await trio.sleep(0.1)
        channel.port1.close()
    assert peak <= 3
    assert seen[0] == 0
    assert any(isinstance(x, str) and x.startswith("lagged") for x in seen)
    numbers = [x for x in seen if isinstance(x, int)]
    assert numbers == sorted(numbers)
    assert numbers[-3:] == [27, 28, 29]  # the newest survive
    lost = sum(int(x.split()[1]) for x in seen if isinstance(x, str))
    assert lost + len(numbers) == 30  # nothing vanishes unannounced
    assert group.statistics().dropped == lost


async def test_disconnect_with_a_slow_consumer_on_the_clock(autojump_clock: Any) -> None:
    """A consumer that falls ``max_queued`` behind is cut off at a predictable moment, gets
    what it had, then EndOfChannel; a fast one carries on."""
    slow, fast = MessageChannel(), MessageChannel()
    group = PortCollection(
        [slow.port1, fast.port1], max_queued=2, policy=SlowMemberPolicy.DISCONNECT
    )
    slow_seen: list[object] = []
    fast_seen: list[object] = []

    async def reader(port: MessagePort, seconds: float, seen: list[object]) -> None:
        async for event in port:
            seen.append(event.data)
            await trio.sleep(seconds)
        seen.append(f"end at {trio.current_time():g}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader, slow.port2, 1.0, slow_seen)
        nursery.start_soon(reader, fast.port2, 0.0, fast_seen)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(10):
            await group.send(i)
            await trio.sleep(0.25)
        group.clear()
        fast.port1.close()
    assert fast_seen == [*range(10), "end at 2.5"]
    # slow takes 0 at once and sleeps; 1 and 2 queue; at t=0.75 (send 3) it holds 2: cut off.
    # It still reads what it had, 1 at t=1 and 2 at t=2, then the end.
    assert slow_seen == [0, 1, 2, "end at 3"]
    assert group.statistics().disconnected == 1
