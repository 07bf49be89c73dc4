"""Shutdown as OTP does it: start in spawn order, stop in reverse, one at a time, each within
its ``shutdown`` deadline; and nothing launched, hung or lost while a supervisor stops."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import actors
from actors import (
    ActorState,
    Backoff,
    MessageChannel,
    Restart,
    RestartStrategy,
    TooManyRestartsError,
    open_supervisor,
)


class Boom(Exception):
    """A scripted crash."""


def journal() -> tuple[list[tuple[str, str]], Any]:
    """A child that records its start and the start and end of its cleanup, which takes
    ``cleanup`` seconds (shielded, so the supervisor must wait for it)."""
    steps: list[tuple[str, str]] = []

    async def child(cleanup: float = 0.1) -> None:
        name = actors.current_actor().name
        steps.append(("start", name))
        try:
            await trio.sleep_forever()
        finally:
            steps.append(("stopping", name))
            with trio.CancelScope(shield=True):
                await trio.sleep(cleanup)
            steps.append(("stopped", name))

    return steps, child


@pytest.mark.parametrize("run", range(8))  # trio shuffles what runs first: try several times
async def test_children_begin_in_spawn_order(run: int) -> None:
    """Children spawned together begin in the order they were spawned."""
    steps, child = journal()
    async with open_supervisor() as sup:
        for name in "abcdef":
            sup.spawn(child, name=name)
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    assert [n for s, n in steps if s == "start"] == list("abcdef")


async def test_cancel_stops_children_one_at_a_time_last_spawned_first(
    autojump_clock: Any,
) -> None:
    """``sup.cancel()`` stops c, then b, then a, each cleanup finished before the next."""
    steps, child = journal()
    async with open_supervisor() as sup:
        for name in "abc":
            sup.spawn(child, name=name)
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    assert steps[3:] == [
        ("stopping", "c"),
        ("stopped", "c"),
        ("stopping", "b"),
        ("stopped", "b"),
        ("stopping", "a"),
        ("stopped", "a"),
    ]


@pytest.mark.parametrize("how", ["scope", "error"])
async def test_a_cancel_from_outside_or_an_error_in_the_block_stops_in_order(
    how: str, autojump_clock: Any
) -> None:
    """A cancel scope around the supervisor, or an exception in its body, stops the children
    in the same order as ``sup.cancel()``."""
    steps, child = journal()

    async def tree() -> None:
        async with open_supervisor() as sup:
            for name in "abc":
                sup.spawn(child, name=name)
            await trio.testing.wait_all_tasks_blocked()
            if how == "error":
                raise Boom
            await trio.sleep_forever()

    if how == "scope":
        with trio.move_on_after(1):
            await tree()
    else:
        with pytest.RaisesGroup(Boom):
            await tree()
    assert [n for s, n in steps if s == "stopped"] == ["c", "b", "a"]


@pytest.mark.parametrize("strategy", [RestartStrategy.ONE_FOR_ALL, RestartStrategy.REST_FOR_ONE])
async def test_a_group_restart_stops_siblings_last_first_then_starts_them_in_order(
    strategy: RestartStrategy, autojump_clock: Any
) -> None:
    """The siblings of a group restart are stopped one at a time, last spawned first, and
    begin again in spawn order."""
    steps, child = journal()
    crash = trio.Event()

    async def crasher() -> None:
        steps.append(("start", "b"))
        if actors.current_actor().incarnation == 1:
            await crash.wait()
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor(strategy=strategy) as sup:
        sup.spawn(child, name="a")
        sup.spawn(crasher, name="b")
        sup.spawn(child, name="c")
        sup.spawn(child, name="d")
        await trio.testing.wait_all_tasks_blocked()
        del steps[:]
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(1)
        sup.cancel()
    stopped = [n for s, n in steps if s == "stopped"]
    started = [n for s, n in steps if s == "start"]
    if strategy is RestartStrategy.ONE_FOR_ALL:
        assert stopped[:3] == ["d", "c", "a"]
        assert started == ["a", "b", "c", "d"]
    else:
        assert stopped[:2] == ["d", "c"]
        assert started == ["b", "c", "d"]


async def test_a_child_ignoring_cancellation_is_given_up_on_at_its_deadline(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """A child that does not end within ``shutdown`` seconds of being cancelled is logged
    (with where it is stuck), treated as ended, and the others are stopped without waiting
    for it; the block still waits for its task, which trio cannot kill."""
    steps, child = journal()
    channel = MessageChannel()

    async def stubborn(port: actors.MessagePort) -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(10)  # ignores the cancellation for 10 s
            steps.append(("stopped", "stubborn"))

    start = trio.current_time()
    async with open_supervisor() as sup:
        sup.spawn(child, name="a")
        handle = sup.spawn(stubborn, channel.port2, shutdown=2.0)
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    [timeout] = [e for e in logs if e["event"] == "actor_shutdown_timeout"]
    assert timeout["actor"] == "root/stubborn"
    assert timeout["shutdown"] == 2.0
    assert timeout["log_level"] == "warning"
    assert "test_shutdown.py" in timeout["stuck_at"]
    # a was stopped at 2 s, right after the deadline, not after stubborn's 10 s ...
    assert steps.index(("stopped", "a")) < steps.index(("stopped", "stubborn"))
    assert handle.statistics().state is ActorState.STOPPED
    assert not channel.port1.statistics().entangled  # its ports were closed at the deadline
    # ... and the block exited when the stubborn task finally ended
    assert trio.current_time() - start == pytest.approx(10.0)


async def test_shutdown_none_waits_as_long_as_it_takes(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """``shutdown=None`` (OTP's infinity): the supervisor waits for the child, however long."""
    steps, child = journal()
    async with open_supervisor() as sup:
        sup.spawn(child, 10.0, name="slow", shutdown=None)
        sup.spawn(child, 0.0, name="quick")
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    assert [n for s, n in steps if s == "stopped"] == ["quick", "slow"]
    assert not [e for e in logs if e["event"] == "actor_shutdown_timeout"]


async def test_shutdown_zero_does_not_wait_and_does_not_warn(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """``shutdown=0`` (OTP's brutal_kill): cancelled and not waited for; not a warning."""
    steps, child = journal()
    async with open_supervisor() as sup:
        sup.spawn(child, 0.0, name="a")
        sup.spawn(child, 5.0, name="b", shutdown=0)
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    assert steps.index(("stopped", "a")) < steps.index(("stopped", "b"))  # b not waited for
    assert not [e for e in logs if e["event"] == "actor_shutdown_timeout"]


async def test_handle_cancel_has_the_same_deadline(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """``handle.cancel()`` on a child that ignores it: stopped for good at its deadline."""
    _, child = journal()
    async with open_supervisor() as sup:
        handle = sup.spawn(child, 10.0, shutdown=1.0)
        await trio.testing.wait_all_tasks_blocked()
        handle.cancel()
        with trio.fail_after(1.5):
            await handle.wait()
        assert handle.statistics().state is ActorState.STOPPED
        sup.cancel()
    assert len([e for e in logs if e["event"] == "actor_shutdown_timeout"]) == 1


async def test_a_stuck_sibling_does_not_hold_up_a_group_restart_forever(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """In a group restart, a sibling past its deadline is given up on, and the group starts
    again, the stuck one too, with its slot's ports moved on to the new incarnation."""
    crash = trio.Event()
    channel = MessageChannel()
    incarnations: list[int] = []
    second = trio.Event()

    async def stuck(port: actors.MessagePort) -> None:
        incarnations.append(actors.current_actor().incarnation)
        if len(incarnations) == 2:
            second.set()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(10)

    async def crasher() -> None:
        await crash.wait()
        raise Boom

    async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL) as sup:
        handle = sup.spawn(stuck, channel.port2, shutdown=3.0)
        sup.spawn(crasher, restart=Restart.TRANSIENT)
        await trio.testing.wait_all_tasks_blocked()
        crash.set()
        with trio.fail_after(4):  # 3 s of deadline, then the group starts again
            await second.wait()
        assert incarnations == [1, 2]
        channel.port1.post_message("still here")
        assert handle.statistics().queued == 1  # the same slot port, for incarnation 2
        sup.cancel()
    assert len([e for e in logs if e["event"] == "actor_shutdown_timeout"]) >= 1


async def test_shutdown_must_be_a_sensible_number() -> None:
    """``shutdown`` is a number of seconds >= 0, or ``None``; nothing is made otherwise."""

    async def child() -> None:
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        with pytest.raises(ValueError, match="shutdown"):
            sup.spawn(child, shutdown=-1)
        with pytest.raises(ValueError, match="shutdown"):
            sup.spawn(child, shutdown=float("nan"))
        with pytest.raises(TypeError, match="shutdown"):
            sup.spawn(child, shutdown="5")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="shutdown"):
            sup.spawn(child, shutdown=True)
        assert sup.spawn(child, shutdown=float("inf")).shutdown is None
        assert sup.spawn(child).shutdown == 5.0
        assert len(sup.children) == 2
        sup.cancel()


# -- item 1: nothing is launched once the supervisor is stopping ----------------------------


@pytest.mark.parametrize("strategy", [RestartStrategy.ONE_FOR_ALL, RestartStrategy.REST_FOR_ONE])
@pytest.mark.parametrize("how", ["cancel", "scope", "error"])
@pytest.mark.parametrize("crasher_first", [False, True])
async def test_stopping_during_a_group_restart_launches_nothing(
    strategy: RestartStrategy, how: str, crasher_first: bool, autojump_clock: Any
) -> None:
    """Cancelling (three ways) while a group restart winds a sibling down stops everything
    quietly: no new incarnation, no 'Nursery is closed' error, the body's own outcome."""
    _, child = journal()

    async def crasher() -> None:
        await trio.sleep(0.5)
        raise Boom

    handles: list[actors.ActorHandle] = []

    async def tree() -> None:
        async with open_supervisor(strategy=strategy) as sup:
            if crasher_first:
                handles.append(sup.spawn(crasher, name="a"))
            handles.append(sup.spawn(child, 1.0, name="slow"))  # takes 1 s to wind down
            if not crasher_first:
                handles.append(sup.spawn(crasher, name="b"))
            await trio.sleep(0.7)  # a group restart is winding slow down now
            if how == "cancel":
                sup.cancel()
            elif how == "error":
                raise Boom("the body's own")
            await trio.sleep_forever()

    if how == "scope":
        with trio.move_on_after(0.7):
            await tree()
    elif how == "error":
        with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="the body's own")):
            await tree()
    else:
        await tree()
    if strategy is RestartStrategy.REST_FOR_ONE and not crasher_first:
        assert [h.incarnation for h in handles] == [1, 2]  # slow is not in b's group
    else:
        assert [h.incarnation for h in handles] == [1, 1]  # nobody started again
    assert all(h.statistics().state is ActorState.STOPPED for h in handles)


async def test_a_give_up_during_a_group_restart_raises_too_many_restarts(
    autojump_clock: Any,
) -> None:
    """A give-up while siblings wind down raises TooManyRestartsError, nothing else."""
    steps, child = journal()

    async def crasher() -> None:
        await trio.sleep(0.5)
        raise Boom

    async def tree() -> None:
        async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL, max_restarts=0) as sup:
            sup.spawn(crasher, name="a")
            sup.spawn(child, 1.0, name="b")
            await trio.sleep_forever()

    with pytest.raises(TooManyRestartsError):
        await tree()
    assert steps[-1] == ("stopped", "b")


# -- items 3 and 10: start() never hangs, and says what happened ----------------------------


async def test_start_from_outside_raises_when_the_supervisor_is_cancelled() -> None:
    """A ``start()`` awaited by a task outside the block raises when the supervisor stops
    before the child calls ``started()``; it does not hang."""
    outcome: list[BaseException] = []
    ready = trio.Event()
    box: list[actors.Supervisor] = []

    async def hold() -> None:
        async with open_supervisor() as sup:
            box.append(sup)
            ready.set()
            await trio.sleep_forever()

    async def never_ready(task_status: Any) -> None:
        await trio.sleep_forever()

    async def starter() -> None:
        try:
            await box[0].start(never_ready)
        except Exception as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold)
        await ready.wait()
        nursery.start_soon(starter)
        await trio.testing.wait_all_tasks_blocked()
        box[0].cancel()
    [error] = outcome
    assert isinstance(error, RuntimeError)
    assert "stopped because its supervisor is stopping" in str(error)
    assert "before it called task_status.started()" in str(error)


async def test_start_from_outside_raises_when_the_supervisor_gives_up(
    autojump_clock: Any,
) -> None:
    """If the supervisor gives up first, ``start()`` raises, chained to the give-up."""
    outcome: list[BaseException] = []
    ready = trio.Event()
    box: list[actors.Supervisor] = []

    async def crasher() -> None:
        await trio.sleep(1)
        raise Boom

    async def tree() -> None:
        async with open_supervisor(max_restarts=0) as sup:
            box.append(sup)
            sup.spawn(crasher)
            ready.set()
            await trio.sleep_forever()

    async def hold() -> None:
        with pytest.raises(TooManyRestartsError):
            await tree()

    async def never_ready(task_status: Any) -> None:
        await trio.sleep_forever()

    async def starter() -> None:
        try:
            await box[0].start(never_ready)
        except Exception as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold)
        await ready.wait()
        nursery.start_soon(starter)
    [error] = outcome
    assert "its supervisor gave up" in str(error)
    assert isinstance(error.__cause__, TooManyRestartsError)


async def test_start_caught_in_a_group_restart_says_so() -> None:
    """A child still starting when a sibling's crash restarts the group: ``start()`` says
    it was stopped for that group restart, not that it returned."""
    crash = trio.Event()

    async def crasher() -> None:
        await crash.wait()
        raise Boom

    async def slow_start(task_status: Any) -> None:
        crash.set()
        await trio.sleep_forever()

    async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL) as sup:
        sup.spawn(crasher, name="a")
        with pytest.raises(RuntimeError) as info:
            await sup.start(slow_start, name="b")
        sup.cancel()
    message = str(info.value)
    assert "root/b was stopped for a group restart after root/a crashed" in message
    assert "returned" not in message


# -- item 6: no orphaned back-off timer ------------------------------------------------------


async def test_cancelling_a_child_in_back_off_does_not_keep_the_block_open(
    autojump_clock: Any,
) -> None:
    """A child waiting out a 600 s back-off is cancelled: the block exits at once, not when
    the timer would have fired."""

    async def crasher() -> None:
        raise Boom

    start = trio.current_time()
    async with open_supervisor(backoff=Backoff(initial=600, cap=600), max_restarts=10) as sup:
        handle = sup.spawn(crasher)
        await trio.sleep(1)
        assert handle.statistics().state is ActorState.RESTARTING
        handle.cancel()
    assert trio.current_time() - start == pytest.approx(1.0)


async def test_cancelling_the_supervisor_during_back_off_exits_at_once(
    autojump_clock: Any,
) -> None:
    """The same with ``sup.cancel()``: the pending restart is dropped with the supervisor."""

    async def crasher() -> None:
        raise Boom

    start = trio.current_time()
    async with open_supervisor(backoff=Backoff(initial=600, cap=600), max_restarts=10) as sup:
        sup.spawn(crasher)
        await trio.sleep(1)
        sup.cancel()
    assert trio.current_time() - start == pytest.approx(1.0)


async def test_spawn_while_stopping_is_refused() -> None:
    """Once the supervisor is stopping, ``spawn`` raises instead of launching a child."""
    refused: list[Exception] = []
    box: list[actors.Supervisor] = []

    async def child() -> None:
        try:
            await trio.sleep_forever()
        finally:
            try:
                box[0].spawn(child)
            except RuntimeError as exc:
                refused.append(exc)

    async with open_supervisor() as sup:
        box.append(sup)
        sup.spawn(child)
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    [error] = refused
    assert "stopping" in str(error)
