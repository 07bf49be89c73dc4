"""Supervisors: nursery-like lifetimes, restart types, strategies, intensity, escalation."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import structlog.testing
import trio
import trio.testing
from _helpers import close_ports

import actors
from actors import (
    ActorState,
    Backoff,
    MessageChannel,
    MessagePort,
    Restart,
    RestartStrategy,
    TooManyRestartsError,
    open_supervisor,
)


class Boom(Exception):
    """The crash the tests' actors raise."""


def recorder() -> tuple[list[tuple[str, int]], Callable[..., Any]]:
    """An actor factory that records (name, incarnation) at each start."""
    starts: list[tuple[str, int]] = []

    async def actor(*_: object) -> None:
        me = actors.current_actor()
        starts.append((me.name, me.incarnation))
        await trio.sleep_forever()

    return starts, actor


async def test_block_exit_waits_for_children_to_stop_for_good() -> None:
    """The ``async with`` exits only once every child has stopped for good."""
    release = trio.Event()
    done: list[str] = []

    async def child() -> None:
        await release.wait()
        done.append("child")

    async with open_supervisor() as sup:
        handle = sup.spawn(child, restart=Restart.TRANSIENT)
        await trio.testing.wait_all_tasks_blocked()
        assert handle.statistics().state is ActorState.RUNNING
        release.set()
    assert done == ["child"]
    assert handle.statistics().state is ActorState.STOPPED
    assert sup.children == ()


async def test_cancel_stops_permanent_children_and_exits_quietly() -> None:
    """``sup.cancel()`` stops children that would run forever; the block raises nothing."""
    starts, forever = recorder()
    async with open_supervisor() as sup:
        a = sup.spawn(forever, name="a")
        b = sup.spawn(forever, name="b")
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
        await trio.sleep_forever()  # the body is cancelled too, as a nursery's
    assert sorted(starts) == [("a", 1), ("b", 1)]
    assert a.statistics().state is b.statistics().state is ActorState.STOPPED


async def test_cancel_scope_around_the_supervisor_stops_everything() -> None:
    """Cancelling from outside stops every child and closes its ports."""
    channel = MessageChannel()

    async def holder(port: MessagePort) -> None:
        await trio.sleep_forever()

    with trio.move_on_after(1) as scope:
        async with open_supervisor() as sup:
            handle = sup.spawn(holder, channel.port2)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
    assert handle.statistics().state is ActorState.STOPPED
    with pytest.raises(trio.EndOfChannel):
        await channel.port1.receive()


async def test_an_error_in_the_block_cancels_children_and_propagates() -> None:
    """As a nursery: the body's exception cancels the children and comes out in a group."""
    channel = MessageChannel()

    async def holder(port: MessagePort) -> None:
        await trio.sleep_forever()

    with pytest.RaisesGroup(Boom):
        async with open_supervisor() as sup:
            sup.spawn(holder, channel.port2)
            await trio.testing.wait_all_tasks_blocked()
            raise Boom
    with pytest.raises(trio.EndOfChannel):
        await channel.port1.receive()


# -- restart types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "crash", "restarted"),
    [
        (Restart.PERMANENT, False, True),
        (Restart.PERMANENT, True, True),
        (Restart.TRANSIENT, False, False),
        (Restart.TRANSIENT, True, True),
        (Restart.TEMPORARY, False, False),
        (Restart.TEMPORARY, True, False),
    ],
)
async def test_restart_types(restart: Restart, crash: bool, restarted: bool) -> None:
    """PERMANENT always restarts, TRANSIENT only after a crash, TEMPORARY never."""
    runs: list[int] = []

    async def child() -> None:
        runs.append(actors.current_actor().incarnation)
        if len(runs) == 1:
            if crash:
                raise Boom
            return
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        handle = sup.spawn(child, restart=restart)
        await trio.testing.wait_all_tasks_blocked()
        assert runs == ([1, 2] if restarted else [1])
        expected = ActorState.RUNNING if restarted else ActorState.STOPPED
        assert handle.statistics().state is expected
        assert (handle.statistics().last_crash is not None) == crash
        sup.cancel()


async def test_a_temporary_crash_does_not_bring_the_tree_down(
    logs: list[dict[str, Any]],
) -> None:
    """A crashing TEMPORARY child is logged and gone; its siblings go on untouched."""
    starts, forever = recorder()

    async def fragile() -> None:
        raise Boom("temporary")

    async with open_supervisor(max_restarts=0) as sup:
        sup.spawn(forever, name="steady")
        gone = sup.spawn(fragile, restart=Restart.TEMPORARY)
        await gone.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert [h.name for h in sup.children] == ["steady"]
        assert not sup.statistics().gave_up
        sup.cancel()
    assert starts == [("steady", 1)]
    crashed = [e for e in logs if e["event"] == "actor_crashed"]
    assert [e["actor"] for e in crashed] == ["root/fragile"]
    assert isinstance(crashed[0]["exc_info"], Boom)


# -- strategies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (RestartStrategy.ONE_FOR_ONE, [("b", 2)]),
        (RestartStrategy.ONE_FOR_ALL, [("a", 2), ("b", 2), ("c", 2)]),
        (RestartStrategy.REST_FOR_ONE, [("b", 2), ("c", 2)]),
    ],
)
async def test_strategies_restart_the_right_children_in_spawn_order(
    strategy: RestartStrategy, expected: list[tuple[str, int]]
) -> None:
    """OTP's strategies: the crashed child; all; the crashed one and those after it."""
    starts: list[tuple[str, int]] = []
    crash = trio.Event()

    async def child() -> None:
        me = actors.current_actor()
        starts.append((me.name, me.incarnation))
        if me.name == "b" and me.incarnation == 1:
            await crash.wait()
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor(strategy=strategy) as sup:
        for name in "abc":
            sup.spawn(child, name=name)
        await trio.testing.wait_all_tasks_blocked()
        del starts[:]
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        assert starts == expected
        assert sup.statistics().restarts == 1  # one crash, one restart, however many children
        sup.cancel()


@pytest.mark.parametrize("strategy", [RestartStrategy.ONE_FOR_ALL, RestartStrategy.REST_FOR_ONE])
async def test_group_restarts_stop_temporary_siblings_for_good(strategy: RestartStrategy) -> None:
    """A TEMPORARY sibling caught in a group restart is stopped, not restarted (OTP)."""
    crash = trio.Event()

    async def crasher() -> None:
        if actors.current_actor().incarnation == 1:
            await crash.wait()
            raise Boom
        await trio.sleep_forever()

    async def idle() -> None:
        await trio.sleep_forever()

    async with open_supervisor(strategy=strategy) as sup:
        sup.spawn(crasher)
        temp = sup.spawn(idle, restart=Restart.TEMPORARY)
        perm = sup.spawn(idle)
        await trio.testing.wait_all_tasks_blocked()
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        assert temp.statistics().state is ActorState.STOPPED
        assert perm.incarnation == 2
        sup.cancel()


# -- intensity ----------------------------------------------------------------------------


def crash_every(seconds: float, times: int | None = None) -> Callable[[], Any]:
    """An actor that sleeps ``seconds`` then crashes (forever after ``times`` crashes)."""
    count = [0]

    async def flaky() -> None:
        if times is not None and count[0] >= times:
            await trio.sleep_forever()
        await trio.sleep(seconds)
        count[0] += 1
        raise Boom(f"crash {count[0]}")

    return flaky


async def test_max_restarts_within_the_window_are_allowed(autojump_clock: Any) -> None:
    """Exactly ``max_restarts`` restarts within ``within`` seconds: no giving up."""
    async with open_supervisor(max_restarts=3, within=5.0) as sup:
        handle = sup.spawn(crash_every(1.0, times=3))
        await trio.sleep(10)
        assert handle.incarnation == 4
        assert sup.statistics().intensity_left == 3  # the window has moved past them
        sup.cancel()


async def test_one_restart_too_many_gives_up(autojump_clock: Any) -> None:
    """The 4th restart within 5 s (max_restarts=3) makes the supervisor give up."""
    handles = []

    async def tree() -> None:
        async with open_supervisor(max_restarts=3, within=5.0) as sup:
            handles.append(sup.spawn(crash_every(1.0)))
            await trio.sleep_forever()

    with pytest.raises(TooManyRestartsError) as info:
        await tree()
    [handle] = handles
    assert trio.current_time() == pytest.approx(4.0)  # crashes at 1, 2, 3, 4 s
    assert handle.incarnation == 4
    assert handle.statistics().state is ActorState.STOPPED
    assert isinstance(info.value.__cause__, Boom)
    assert str(info.value.__cause__) == "crash 4"
    assert (info.value.path, info.value.max_restarts, info.value.within) == ("root", 3, 5.0)


async def test_restarts_spread_wider_than_the_window_never_give_up(autojump_clock: Any) -> None:
    """Crashes further apart than ``within`` / ``max_restarts`` go on forever."""
    async with open_supervisor(max_restarts=1, within=1.0) as sup:
        handle = sup.spawn(crash_every(1.25))
        await trio.sleep(15.5)
        assert handle.incarnation == 13
        assert not sup.statistics().gave_up
        sup.cancel()


async def test_restarts_exactly_within_apart_count_as_otp_does(autojump_clock: Any) -> None:
    """Restarts at ``t`` and ``t + within`` are both in the window (OTP: ``T >= Now - Period``)."""

    async def tree() -> None:
        async with open_supervisor(max_restarts=1, within=1.0) as sup:
            sup.spawn(crash_every(1.0))

    with pytest.raises(TooManyRestartsError):
        await tree()
    assert trio.current_time() == pytest.approx(2.0)  # restarts at 1 and 2: two within 1 s


async def test_intensity_left_counts_a_restart_exactly_within_ago(autojump_clock: Any) -> None:
    """``intensity_left`` uses the same closed window as the decision to give up."""
    async with open_supervisor(max_restarts=2, within=1.0) as sup:
        sup.spawn(crash_every(1.0, times=1))
        await trio.sleep(2.0)  # the one restart was at 1.0: exactly ``within`` ago
        assert sup.statistics().intensity_left == 1
        await trio.sleep(0.001)
        assert sup.statistics().intensity_left == 2
        sup.cancel()


async def test_restarts_just_inside_the_window_count(autojump_clock: Any) -> None:
    """Two restarts 4.9 s apart with max_restarts=1 and within=5: the second gives up."""

    async def tree() -> None:
        async with open_supervisor(max_restarts=1, within=5.0) as sup:
            sup.spawn(crash_every(4.9))

    with pytest.raises(TooManyRestartsError):
        await tree()
    assert trio.current_time() == pytest.approx(9.8)


async def test_max_restarts_zero_gives_up_at_the_first_crash(autojump_clock: Any) -> None:
    """``max_restarts=0``: no restart at all."""
    handles = []

    async def tree() -> None:
        async with open_supervisor(max_restarts=0) as sup:
            handles.append(sup.spawn(crash_every(1.0)))

    with pytest.raises(TooManyRestartsError):
        await tree()
    assert handles[0].incarnation == 1


async def test_giving_up_stops_every_child_and_closes_their_ports(autojump_clock: Any) -> None:
    """When a supervisor gives up, every child's peers hear of it."""
    channels = [MessageChannel() for _ in range(3)]

    async def holder(port: MessagePort) -> None:
        await trio.sleep_forever()

    handles: list[actors.ActorHandle] = []

    async def tree() -> None:
        async with open_supervisor(max_restarts=0) as sup:
            handles.extend(sup.spawn(holder, c.port2) for c in channels)
            sup.spawn(crash_every(1.0))

    with pytest.raises(TooManyRestartsError):
        await tree()
    assert all(h.statistics().state is ActorState.STOPPED for h in handles)
    for channel in channels:
        with pytest.raises(trio.EndOfChannel):
            await channel.port1.receive()


async def test_escalation_through_three_levels(autojump_clock: Any) -> None:
    """A leaf that keeps crashing exhausts its supervisor, then the middle, then the root."""
    incarnations: dict[str, int] = {}

    async def leaf() -> None:
        incarnations["leaf"] = incarnations.get("leaf", 0) + 1
        await trio.sleep(1)
        raise Boom("leaf")

    async def middle() -> None:
        incarnations["middle"] = incarnations.get("middle", 0) + 1
        async with open_supervisor(max_restarts=1, within=10) as sup:
            sup.spawn(leaf)

    async def top() -> None:
        incarnations["top"] = incarnations.get("top", 0) + 1
        async with open_supervisor(max_restarts=1, within=100) as sup:
            sup.spawn(middle)

    with pytest.raises(TooManyRestartsError) as info:
        async with open_supervisor(max_restarts=1, within=1000) as root:
            root.spawn(top)
    # Each level gives up after 2 crashes of its child: 2 tops, 4 middles, 8 leaves... each
    # middle incarnation runs its leaf twice (one restart allowed) before giving up.
    assert incarnations == {"top": 2, "middle": 4, "leaf": 8}
    assert info.value.path == "root"
    chain = []
    error: BaseException | None = info.value
    while error is not None:
        chain.append(type(error).__name__ + ":" + getattr(error, "path", str(error)))
        error = error.__cause__
    assert chain == [
        "TooManyRestartsError:root",
        "TooManyRestartsError:root/top",
        "TooManyRestartsError:root/top/middle",
        "Boom:leaf",
    ]


async def test_backoff_delays_restarts_exponentially_up_to_the_cap(autojump_clock: Any) -> None:
    """Restart k of a child waits ``min(cap, initial * factor**k)`` seconds."""
    started: list[float] = []

    async def flaky() -> None:
        started.append(trio.current_time())
        raise Boom

    backoff = Backoff(initial=1.0, factor=2.0, cap=5.0)
    async with open_supervisor(max_restarts=10, within=1000, backoff=backoff) as sup:
        handle = sup.spawn(flaky)
        await trio.sleep(18)  # restarts at 1, 3, 7, 12 and 17 s
        assert handle.incarnation == 6
        sup.cancel()
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(started)]
    assert gaps == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_a_child_waiting_for_its_backoff_can_be_cancelled(autojump_clock: Any) -> None:
    """Cancelling a child that is down stops it for good at once."""
    async with open_supervisor(backoff=Backoff(initial=10)) as sup:
        handle = sup.spawn(crash_every(0))
        await trio.sleep(1)
        assert handle.statistics().state is ActorState.RESTARTING
        handle.cancel()
        await handle.wait()
        assert trio.current_time() == pytest.approx(1.0)
        assert handle.statistics().state is ActorState.STOPPED


# -- spawn and start ----------------------------------------------------------------------


async def test_spawn_transfers_every_port_and_buffer_in_the_arguments() -> None:
    """Ports and buffers anywhere in ``args`` are moved; the caller's are detached."""
    a, b = MessageChannel(), MessageChannel()
    buffer = actors.ArrayBuffer(b"abc")
    got: list[object] = []

    async def child(config: dict[str, Any], port: MessagePort) -> None:
        got.extend([config, port])
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        sup.spawn(child, {"peer": a.port2, "data": [buffer]}, b.port2)
        assert a.port2.statistics().transferred
        assert b.port2.statistics().transferred
        assert buffer.detached
        await trio.testing.wait_all_tasks_blocked()
        config, port = got
        assert isinstance(config, dict)
        assert bytes(config["data"][0]) == b"abc"
        config["peer"].post_message("via config")
        assert isinstance(port, MessagePort)
        port.post_message("via arg")
        assert (await a.port1.receive()).data == "via config"
        assert (await b.port1.receive()).data == "via arg"
        sup.cancel()


async def test_a_failed_spawn_detaches_nothing_and_makes_no_child() -> None:
    """Uncloneable arguments raise DataCloneError naming where; nothing moved."""
    channel = MessageChannel()

    async def child(*_: object) -> None:
        pass

    async with open_supervisor() as sup:
        with pytest.raises(actors.DataCloneError, match=r"args\[1\]\['lock'\]"):
            sup.spawn(child, channel.port2, {"lock": trio.Lock()})
        assert not channel.port2.statistics().transferred
        assert sup.children == ()
        assert sup.spawn(child, restart=Restart.TEMPORARY).name == "child"  # no name used
    close_ports(channel)


async def test_spawn_refuses_a_plain_function_before_moving_anything() -> None:
    """``fn`` must be async; the check happens before the arguments are moved."""
    channel = MessageChannel()

    def not_async(port: MessagePort) -> None:
        pass

    async with open_supervisor() as sup:
        with pytest.raises(TypeError, match="async function"):
            sup.spawn(not_async, channel.port2)  # type: ignore[arg-type]
        assert not channel.port2.statistics().transferred
        assert sup.children == ()
    close_ports(channel)


async def test_every_incarnation_gets_a_fresh_clone_of_the_arguments() -> None:
    """What one incarnation did to its arguments, the next does not see."""
    seen: list[list[int]] = []

    async def child(items: list[int]) -> None:
        seen.append(list(items))
        items.append(99)
        if len(seen) < 3:
            raise Boom
        await trio.sleep_forever()

    original = [1, 2]
    async with open_supervisor() as sup:
        sup.spawn(child, original)
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    assert seen == [[1, 2], [1, 2], [1, 2]]
    assert original == [1, 2]


async def test_start_returns_the_started_value_with_ports_moved() -> None:
    """As ``Nursery.start``: the value given to ``started()``, ports in it transferred."""

    async def server(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        channel = MessageChannel()
        task_status.started({"port": channel.port1, "ready": True})
        async for event in channel.port2:
            event.reply(event.data * 2)

    async with open_supervisor() as sup:
        value = await sup.start(server)
        assert value["ready"] is True
        assert await actors.ask(value["port"], 21) == 42
        sup.cancel()


async def test_start_raises_a_crash_before_started_and_does_not_restart() -> None:
    """A child that crashes before ``started()`` is not restarted; start() raises."""
    runs = []

    async def broken(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        runs.append(1)
        raise Boom("init")

    async def quitter(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        pass

    async with open_supervisor() as sup:
        with pytest.raises(Boom, match="init"):
            await sup.start(broken)
        with pytest.raises(RuntimeError, match=r"without calling task_status\.started"):
            await sup.start(quitter)
        assert sup.children == ()
    assert runs == [1]


async def test_cancelling_start_stops_the_child() -> None:
    """If the ``start()`` call is cancelled before the child is ready, the child stops."""
    channel = MessageChannel()

    async def slow(
        port: MessagePort, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        with trio.move_on_after(0.01):
            await sup.start(slow, channel.port2)
        await trio.testing.wait_all_tasks_blocked()
        assert sup.children == ()
    with pytest.raises(trio.EndOfChannel):
        await channel.port1.receive()


async def test_a_started_child_is_restarted_with_a_task_status() -> None:
    """Restarts call ``fn`` with ``task_status`` again; ``started()`` then goes nowhere."""
    calls: list[int] = []

    async def child(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        n = actors.current_actor().incarnation
        calls.append(n)
        task_status.started(n)
        if n == 1:
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        assert await sup.start(child) == 1
        await trio.testing.wait_all_tasks_blocked()
        assert calls == [1, 2]
        sup.cancel()


async def test_names_and_paths() -> None:
    """Names default to the function's (numbered among siblings); paths nest."""
    paths: list[str] = []

    async def writer() -> None:
        paths.append(actors.current_actor().path)
        await trio.sleep_forever()

    async def db() -> None:
        async with open_supervisor() as sup:
            sup.spawn(writer)
            sup.spawn(writer)

    async with open_supervisor() as sup:
        sup.spawn(db)
        with pytest.raises(ValueError, match="already has a child named 'db'"):
            sup.spawn(db, name="db")
        with pytest.raises(ValueError, match="without '/'"):
            sup.spawn(db, name="a/b")
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(paths) == ["root/db/writer", "root/db/writer-2"]
        sup.cancel()


async def test_spawn_after_the_supervisor_closed_is_an_error() -> None:
    """As a closed nursery: no new arrivals."""

    async def child() -> None:
        pass

    async with open_supervisor() as sup:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        sup.spawn(child)


# -- handles ------------------------------------------------------------------------------


async def test_handle_cancel_stops_one_child_for_good() -> None:
    """``cancel()`` stops a PERMANENT child without a restart; ``wait()`` then returns."""
    starts, forever = recorder()
    async with open_supervisor() as sup:
        a = sup.spawn(forever, name="a")
        b = sup.spawn(forever, name="b")
        await trio.testing.wait_all_tasks_blocked()
        a.cancel()
        a.cancel()  # idempotent
        await a.wait()
        assert a.statistics().state is ActorState.STOPPED
        assert sup.children == (b,)
        await a.wait()  # returns at once now
        sup.cancel()
    assert sorted(starts) == [("a", 1), ("b", 1)]


async def test_current_actor() -> None:
    """Inside an actor (and its handlers) it is the actor's handle; outside, an error."""
    seen: list[object] = []
    channel = MessageChannel()

    async def child(port: MessagePort) -> None:
        seen.append(actors.current_actor())
        port.onmessage = lambda event: seen.append(actors.current_actor())
        await trio.sleep_forever()

    with pytest.raises(RuntimeError, match="outside an actor"):
        actors.current_actor()
    async with open_supervisor() as sup:
        handle = sup.spawn(child, channel.port2)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("hi")
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    assert seen == [handle, handle]


async def test_a_handler_that_raises_crashes_its_actor() -> None:
    """Let it crash: an exception in an actor's message handler is the actor's crash."""
    channel = MessageChannel()

    async def child(port: MessagePort) -> None:
        def handler(event: actors.MessageEvent) -> None:
            raise Boom(event.data)

        port.onmessage = handler
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        handle = sup.spawn(child, channel.port2)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("bad")
        await trio.testing.wait_all_tasks_blocked()
        assert handle.incarnation == 2
        crash = handle.statistics().last_crash
        assert isinstance(crash, Boom)
        assert crash.args == ("bad",)
        sup.cancel()


async def test_no_task_outlives_the_supervisor() -> None:
    """Tasks an actor started and its async handlers are finished when the block exits."""
    finished: list[str] = []
    channel = MessageChannel()

    async def background() -> None:
        try:
            await trio.sleep_forever()
        finally:
            finished.append("background")

    async def child(port: MessagePort) -> None:
        async def handler(event: actors.MessageEvent) -> None:
            try:
                await trio.sleep_forever()
            finally:
                finished.append("handler")

        port.onmessage = handler
        async with trio.open_nursery() as nursery:
            nursery.start_soon(background)

    async with open_supervisor() as sup:
        sup.spawn(child, channel.port2)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("go")
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    assert sorted(finished) == ["background", "handler"]


async def test_an_actors_async_handler_is_cancelled_when_it_crashes() -> None:
    """The end of an incarnation cancels its running async handlers, then restarts."""
    channel = MessageChannel()
    events: list[str] = []
    crash = trio.Event()

    async def child(port: MessagePort) -> None:
        async def handler(event: actors.MessageEvent) -> None:
            try:
                await trio.sleep_forever()
            finally:
                events.append(f"handler {event.data} done")

        if actors.current_actor().incarnation == 1:
            port.onmessage = handler
            await crash.wait()
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        handle = sup.spawn(child, channel.port2)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("x")
        await trio.testing.wait_all_tasks_blocked()
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        assert events == ["handler x done"]
        assert handle.incarnation == 2
        sup.cancel()


# -- observing ----------------------------------------------------------------------------


async def test_statistics_and_tree() -> None:
    """``statistics()`` counts; ``tree()`` is the live tree, printable as text."""
    channel = MessageChannel()
    crash = trio.Event()

    async def writer(port: MessagePort) -> None:
        if actors.current_actor().incarnation == 1:
            await crash.wait()
            raise Boom
        await trio.sleep_forever()

    async def db(port: MessagePort) -> None:
        async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL) as sup:
            sup.spawn(writer, port)

    async def web() -> None:
        channel = MessageChannel()  # owned by the actor: two open ports
        await trio.sleep_forever()
        del channel

    async with open_supervisor() as sup:
        sup.spawn(db, channel.port2)
        sup.spawn(web)
        await trio.testing.wait_all_tasks_blocked()
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("queued")
        stats = sup.statistics()
        assert (stats.children, stats.running, stats.restarts, stats.intensity_left) == (
            2,
            2,
            0,
            3,
        )
        tree = sup.tree()
        assert [node.path for node in tree.walk()] == [
            "root",
            "root/db",
            "root/db/writer",
            "root/web",
        ]
        assert str(tree) == (
            "root  [one_for_one]\n"
            "├── db  running  incarnation 1  ports 0  [one_for_all]\n"
            "│   └── writer  running  incarnation 2  restarts 1  ports 1  queued 1\n"
            "└── web  running  incarnation 1  ports 2"
        )
        sup.cancel()


async def test_a_handler_never_outlives_its_actor_even_on_a_port_it_does_not_own(
    logs: list[dict[str, Any]],
) -> None:
    """A handler an actor put on a port it does not own is not called after the actor
    ended: the message waits at the port for whoever sets a handler next."""
    channel = MessageChannel()  # made outside any actor: nobody owns it
    calls: list[object] = []

    async def child() -> None:
        def handler(event: actors.MessageEvent) -> None:
            calls.append(event.data)
            raise Boom(event.data)

        channel.port2.onmessage = handler

    async with open_supervisor() as sup:
        sup.spawn(child, restart=Restart.TEMPORARY)
    channel.port1.post_message("late")
    await trio.testing.wait_all_tasks_blocked()
    assert calls == []
    assert channel.port2.statistics().queued == 1
    assert not [e for e in logs if e["event"] == "event_listener_failed"]
    got: list[object] = []
    channel.port2.onmessage = lambda event: got.append(event.data)  # a live task's handler
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["late"]
    channel.port1.close()


async def test_giving_up_on_a_permanent_child_that_returns_says_why(
    logs: list[dict[str, Any]],
) -> None:
    """The classic trap (a PERMANENT worker whose loop ends) is named in the error."""
    channel = MessageChannel()

    async def worker(inbox: MessagePort) -> None:
        async for _ in inbox:
            pass

    async def tree() -> None:
        async with open_supervisor() as sup:
            sup.spawn(worker, channel.port2)
            channel.port1.close()

    with pytest.raises(TooManyRestartsError, match=r"returned: a PERMANENT child") as info:
        await tree()
    assert info.value.__cause__ is None
    reasons = [e["reason"] for e in logs if e["event"] == "actor_restarted"]
    assert reasons == ["returned"] * 3
    close_ports(channel)


async def test_siblings_restarted_with_a_group_say_by_whom(logs: list[dict[str, Any]]) -> None:
    """``actor_restarted`` says why: the child's own crash or return, or a sibling's."""
    crash = trio.Event()

    async def child() -> None:
        me = actors.current_actor()
        if me.name == "a" and me.incarnation == 1:
            await crash.wait()
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL) as sup:
        sup.spawn(child, name="a")
        sup.spawn(child, name="b")
        await trio.testing.wait_all_tasks_blocked()
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    restarted = {e["actor"]: e["reason"] for e in logs if e["event"] == "actor_restarted"}
    assert restarted == {"root/a": "crashed", "root/b": "root/a restarted"}


async def test_an_async_handler_of_an_ended_actor_is_never_started() -> None:
    """An async handler an ended actor left on a port it did not own is taken off the
    port with the actor: later messages wait there instead of starting it."""
    channel = MessageChannel()  # nobody owns it
    steps: list[str] = []

    async def child() -> None:
        async def handler(event: actors.MessageEvent) -> None:
            steps.append("began")
            await trio.sleep_forever()

        channel.port2.onmessage = handler

    async with open_supervisor() as sup:
        sup.spawn(child, restart=Restart.TEMPORARY)
    assert channel.port2.onmessage is None
    channel.port1.post_message("late")
    await trio.testing.wait_all_tasks_blocked()
    assert steps == []
    assert channel.port2.statistics().queued == 1
    assert (await channel.port2.receive()).data == "late"  # the port itself works on
    channel.port1.close()


def test_backoff_and_intensity_refuse_nonsense() -> None:
    """Back-off needs positive delays and a factor of at least 1; intensity needs a window."""
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0)
    with pytest.raises(ValueError, match="factor"):
        Backoff(factor=0.5)
    assert Backoff(initial=1, factor=3, cap=5).delay(2) == 5


async def test_open_supervisor_refuses_nonsense() -> None:
    """A negative ``max_restarts``, an empty window or a name that is empty or holds ``/``
    (it would break paths) is a ValueError; a bad strategy a TypeError."""
    with pytest.raises(ValueError, match="max_restarts"):
        async with open_supervisor(max_restarts=-1):
            pass
    with pytest.raises(ValueError, match="within"):
        async with open_supervisor(within=0):
            pass
    with pytest.raises(TypeError, match="RestartStrategy"):
        async with open_supervisor(strategy="one_for_one"):  # type: ignore[arg-type]
            pass
    for bad in ("", "a/b"):
        with pytest.raises(ValueError, match="supervisor's name"):
            async with open_supervisor(name=bad):
                pass
    with pytest.raises(TypeError, match="max_restarts must be an int"):
        async with open_supervisor(max_restarts=2.5):  # type: ignore[arg-type]
            pass
    with pytest.raises(TypeError, match="backoff must be a Backoff"):
        async with open_supervisor(backoff=0.1):  # type: ignore[arg-type]
            pass


async def test_spawn_refuses_a_detached_port_naming_where_it_is() -> None:
    """A port that was already moved or closed: DataCloneError with its place in ``args``."""
    gone, kept = MessageChannel(), MessageChannel()
    gone.port2.close()

    async def child(*_: object) -> None:
        pass

    async with open_supervisor() as sup:
        with pytest.raises(actors.DataCloneError, match=r"^args\[2\]: MessagePort is already"):
            sup.spawn(child, 1, kept.port2, gone.port2)
        with pytest.raises(actors.DataCloneError, match=r"^args\[0\]\['p'\]: MessagePort"):
            sup.spawn(child, {"p": gone.port2})
        assert not kept.port2.statistics().transferred
        assert sup.children == ()
    close_ports(gone, kept)


async def test_the_same_port_twice_in_the_arguments_is_one_port() -> None:
    """As a structured clone: one object in two places arrives as one object."""
    channel = MessageChannel()
    got: list[object] = []

    async def child(a: MessagePort, b: MessagePort) -> None:
        got.append(a is b)

    async with open_supervisor() as sup:
        sup.spawn(child, channel.port2, channel.port2, restart=Restart.TEMPORARY)
    assert got == [True]


async def test_a_sibling_winding_down_for_a_group_restart_is_restarting() -> None:
    """ONE_FOR_ALL: from the moment the supervisor cancels a sibling for the group restart, the
    sibling's state is RESTARTING, also while its cleanup still runs."""
    crash, cleanup = trio.Event(), trio.Event()
    fragile_runs = 0

    async def fragile() -> None:
        nonlocal fragile_runs
        fragile_runs += 1
        if fragile_runs == 1:
            await crash.wait()
            raise Boom
        await trio.sleep_forever()

    async def careful() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await cleanup.wait()

    async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL) as sup:
        a, b = sup.spawn(fragile), sup.spawn(careful)
        await trio.testing.wait_all_tasks_blocked()
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        try:
            assert (a.statistics().state, b.statistics().state) == (
                ActorState.RESTARTING,
                ActorState.RESTARTING,
            )
            stats = sup.statistics()
            assert (stats.running, stats.restarting) == (0, 2)
        finally:
            cleanup.set()  # so a failed assertion does not leave the block waiting forever
        await trio.testing.wait_all_tasks_blocked()
        assert (a.statistics().incarnation, b.statistics().incarnation) == (2, 2)
        assert b.statistics().state is ActorState.RUNNING
        sup.cancel()


# -- misuse that must be loud or harmless ---------------------------------------------------


async def test_async_with_a_slot_port_survives_a_crash() -> None:
    """``async with inbox:`` in an actor that crashes leaves the slot's port with the slot:
    the message behind the one that crashed it reaches the next incarnation."""
    channel = MessageChannel()
    got: list[tuple[int, object]] = []

    async def child(inbox: actors.MessagePort) -> None:
        me = actors.current_actor().incarnation
        async with inbox:
            async for event in inbox:
                got.append((me, event.data))
                if event.data == "crash":
                    raise Boom

    with structlog.testing.capture_logs():
        async with open_supervisor() as sup:
            handle = sup.spawn(child, channel.port2)
            channel.port1.post_message("crash")
            channel.port1.post_message("after")
            await trio.testing.wait_all_tasks_blocked()
            assert handle.incarnation == 2
            assert channel.port1.statistics().entangled
            sup.cancel()
    assert got == [(1, "crash"), (2, "after")]


async def test_async_with_a_slot_port_closes_it_on_a_normal_exit() -> None:
    """Leaving ``async with inbox:`` normally closes the port, as asked."""
    channel = MessageChannel()

    async def child(inbox: actors.MessagePort) -> None:
        async with inbox:
            await inbox.receive()

    async with open_supervisor() as sup:
        sup.spawn(child, channel.port2, restart=Restart.TRANSIENT)
        channel.port1.post_message("one")
    assert not channel.port1.statistics().entangled


async def test_spawn_refuses_a_plain_function_without_calling_it() -> None:
    """A plain function is refused before it is called: its side effects never happen."""
    called: list[object] = []

    def plain(port: object) -> None:
        called.append(port)

    channel = MessageChannel()
    async with open_supervisor() as sup:
        with pytest.raises(TypeError, match="async function"):
            sup.spawn(plain, channel.port2)  # type: ignore[arg-type]
        assert called == []
        assert not channel.port2.statistics().transferred
    channel.port1.close()


async def test_spawn_of_a_coroutine_says_pass_the_function() -> None:
    """``spawn(fn(...))`` says to pass the function; the coroutine is closed (no warning)."""

    async def job() -> None:
        pass

    async with open_supervisor() as sup:
        with pytest.raises(TypeError, match=r"spawn\(fn, \*args\), not spawn\(fn\(\*args\)\)"):
            sup.spawn(job())  # type: ignore[arg-type]


async def test_spawn_accepts_every_kind_of_async_callable() -> None:
    """A partial of an async function, a bound async method and an object with an async
    ``__call__`` all run."""
    ran: list[str] = []

    async def job(tag: str) -> None:
        ran.append(tag)

    class Service:
        async def run(self) -> None:
            ran.append("method")

        async def __call__(self) -> None:
            ran.append("callable")

    async with open_supervisor() as sup:
        sup.spawn(functools.partial(job, "partial"), restart=Restart.TRANSIENT)
        sup.spawn(Service().run, restart=Restart.TRANSIENT)
        sup.spawn(Service(), name="callable", restart=Restart.TRANSIENT)
    assert sorted(ran) == ["callable", "method", "partial"]
