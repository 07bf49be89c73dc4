"""The supervisor at its edges: what an adversarial review of it found (BaseExceptions, calls
from threads, stuck handlers at a deadline, a shutdown racing a back-off, timers of children
long gone, statistics, odd names), each pinned by the rule it broke."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog
import trio
import trio.testing

import actors
from actors import (
    ActorState,
    Backoff,
    MessageChannel,
    Restart,
    RestartStrategy,
    open_supervisor,
)


class Boom(Exception):
    """A scripted crash."""


# -- a BaseException is not a crash: it goes up at once, as from a nursery -----------------


@pytest.mark.parametrize("shutdown", [5.0, None])
async def test_a_keyboard_interrupt_from_a_child_leaves_the_block_at_once(
    autojump_clock: Any, logs: list[dict[str, Any]], shutdown: float | None
) -> None:
    """Not a crash: no restart, no deadline waited for a task that has ended, no timeout."""
    stopped: list[str] = []

    async def ki() -> None:
        await trio.sleep(1)
        raise KeyboardInterrupt

    async def sibling() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stopped.append("sibling")

    async def block() -> None:
        async with open_supervisor() as sup:
            sup.spawn(sibling)
            sup.spawn(ki, shutdown=shutdown)
            await trio.sleep_forever()

    start = trio.current_time()
    with pytest.raises(BaseExceptionGroup) as caught:
        await block()
    assert caught.group_contains(KeyboardInterrupt)
    assert trio.current_time() - start == 1
    assert stopped == ["sibling"]
    events = [e["event"] for e in logs]
    assert "actor_restarted" not in events
    assert "actor_shutdown_timeout" not in events
    assert "actor_crashed" not in events


@pytest.mark.parametrize("handler", ["sync", "async"])
async def test_sys_exit_in_a_message_handler_leaves_the_block_as_system_exit(
    logs: list[dict[str, Any]], handler: str
) -> None:
    """A handler runs in a trio system task, where a BaseException would kill the run: it is
    raised in its actor's task instead, and the child's own cleanup runs."""
    cleanups: list[str] = []

    async def child(port: actors.MessagePort) -> None:
        if handler == "sync":

            def on_message(event: actors.MessageEvent) -> None:
                sys.exit(2)

            port.onmessage = on_message
        else:

            async def on_message_async(event: actors.MessageEvent) -> None:
                await trio.lowlevel.checkpoint()
                sys.exit(2)

            port.onmessage = on_message_async
        try:
            await trio.sleep_forever()
        finally:
            cleanups.append("cleanup")

    channel = MessageChannel()

    async def block() -> None:
        async with open_supervisor() as sup:
            sup.spawn(child, channel.port2)
            await trio.testing.wait_all_tasks_blocked()
            channel.port1.post_message("exit, please")
            await trio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as caught:
        await block()
    assert caught.group_contains(SystemExit)
    assert cleanups == ["cleanup"]


async def test_a_keyboard_interrupt_in_a_log_sink_leaves_a_consistent_supervisor(
    autojump_clock: Any,
) -> None:
    """A Ctrl-C that lands in a structlog processor while the supervisor logs a restart: the
    restart was already made, so the shutdown it starts finds a real task to stop (before,
    it waited for one that was never launched: forever with `shutdown=None`)."""
    fired: list[int] = []

    def processor(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        if event["event"] == "actor_restarted" and not fired:
            fired.append(1)
            raise KeyboardInterrupt
        return event

    async def child() -> None:
        if actors.current_actor().incarnation == 1:
            await trio.sleep(1)
            raise Boom
        await trio.sleep_forever()

    was = structlog.get_config()
    structlog.configure(
        processors=[processor, structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    handles: list[actors.ActorHandle] = []

    async def block() -> None:
        async with open_supervisor() as sup:
            handles.append(sup.spawn(child, shutdown=None))
            await trio.sleep_forever()

    try:
        with pytest.raises(BaseExceptionGroup) as caught:
            await block()
    finally:
        structlog.configure(**was)
    assert caught.group_contains(KeyboardInterrupt)
    assert trio.current_time() == 1
    assert handles[0].statistics().state is ActorState.STOPPED


# -- back-off -------------------------------------------------------------------------------


def test_a_back_off_beyond_a_float_is_its_cap() -> None:
    assert Backoff(factor=10, cap=7.0).delay(400) == 7.0
    assert Backoff(factor=2.0).delay(10**6) == 5.0


async def test_a_long_crashing_child_with_back_off_is_not_an_overflow(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """Thousands of restarts under a back-off end in a give-up, not an OverflowError."""

    async def crasher() -> None:
        raise Boom

    with pytest.raises(actors.TooManyRestartsError):
        async with open_supervisor(
            max_restarts=1100, within=10**7, backoff=Backoff(initial=1e-6, factor=2, cap=0.001)
        ) as sup:
            sup.spawn(crasher)


# -- calls from another thread change nothing ---------------------------------------------


async def test_calls_from_a_thread_are_refused_and_change_nothing() -> None:
    async def worker() -> None:
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        handle = sup.spawn(worker)
        await trio.testing.wait_all_tasks_blocked()
        errors: list[str] = []

        def from_thread() -> None:
            for call in (sup.cancel, handle.cancel, lambda: sup.spawn(worker)):
                try:
                    call()
                except RuntimeError as exc:
                    errors.append(str(exc))

        await trio.to_thread.run_sync(from_thread)
        assert [e.split(" was called")[0] for e in errors] == [
            "Supervisor.cancel()",
            "ActorHandle.cancel()",
            "Supervisor.spawn()",
        ]
        assert all("trio.from_thread.run_sync" in e for e in errors)
        await trio.testing.wait_all_tasks_blocked()
        assert sup.children == (handle,)
        assert handle.statistics().state is ActorState.RUNNING
        assert not sup._driver.stopping
        await trio.to_thread.run_sync(trio.from_thread.run_sync, handle.cancel)
        await handle.wait()
        sup.cancel()


async def test_a_start_from_a_thread_is_refused() -> None:
    async def ready(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async with open_supervisor() as sup:

        def from_thread() -> str:
            try:
                trio.run(sup.start, ready)  # another run, in this thread
            except RuntimeError as exc:
                return str(exc)
            return "started"

        message = await trio.to_thread.run_sync(from_thread)
        assert message.startswith("Supervisor.start() was called from a thread outside")
        assert sup.children == ()
        sup.cancel()


# -- at the deadline, the child is over: nothing of it holds its successors back ----------


@pytest.mark.parametrize("mode", ["receive", "onmessage"])
async def test_a_stuck_handler_of_a_child_given_up_on_does_not_starve_the_next_one(
    autojump_clock: Any, logs: list[dict[str, Any]], mode: str
) -> None:
    """Its slot port goes on to the next incarnation free: the next message is not held
    back until the stuck handler ends."""
    got: list[tuple[float, int, object]] = []

    async def child(port: actors.MessagePort) -> None:
        number = actors.current_actor().incarnation
        if number == 1:

            async def stuck(event: actors.MessageEvent) -> None:
                with trio.CancelScope(shield=True):
                    await trio.sleep(15)

            port.onmessage = stuck
            await trio.sleep_forever()
        elif mode == "receive":
            async for event in port:
                got.append((trio.current_time(), number, event.data))
        else:
            port.onmessage = lambda event: got.append((trio.current_time(), number, event.data))
            await trio.sleep_forever()

    async def crasher() -> None:
        if actors.current_actor().incarnation == 1:
            await trio.sleep(1)
            raise Boom
        await trio.sleep_forever()

    channel = MessageChannel()
    async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL) as sup:
        sup.spawn(child, channel.port2, shutdown=1)
        sup.spawn(crasher)
        await trio.sleep(0.5)
        channel.port1.post_message("first")  # taken by the stuck handler
        await trio.sleep(2.5)  # given up on at 2, restarted
        channel.port1.post_message("second")
        await trio.sleep(1)
        sup.cancel()
    assert got == [(3.0, 2, "second")]
    assert [e["event"] for e in logs].count("actor_shutdown_timeout") == 1


async def test_a_group_member_given_up_on_does_not_hold_back_the_next_member(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """After a group restart a member begins once the one before it is ready; one given up
    on at its deadline counts as ready (it is over), so the next begins then."""
    began: list[tuple[float, int]] = []

    async def a(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        if actors.current_actor().incarnation > 1:
            with trio.CancelScope(shield=True):
                await trio.sleep(15)  # an init that cannot be interrupted
        task_status.started()
        await trio.sleep_forever()

    async def b() -> None:
        number = actors.current_actor().incarnation
        began.append((trio.current_time(), number))
        if number == 1:
            await trio.sleep(1)
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL) as sup:
        first = await sup.start(a, shutdown=1)
        del first
        handle_a = sup.children[0]
        sup.spawn(b)
        await trio.sleep(2)  # b crashed at 1: a is restarted and stuck, b waits for it
        handle_a.cancel()  # given up on at 3
        await trio.sleep(2)
        assert began == [(0.0, 1), (3.0, 2)]
        sup.cancel()


async def test_the_block_waits_for_an_async_handler_of_a_child_given_up_on(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """Nothing the supervisor started outlives its block: not even a stuck handler."""
    ended: list[float] = []

    async def child(port: actors.MessagePort) -> None:
        async def on_message(event: actors.MessageEvent) -> None:
            with trio.CancelScope(shield=True):
                await trio.sleep(10)
            ended.append(trio.current_time())

        port.onmessage = on_message
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(3)  # past its deadline: given up on at 1.5

    channel = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(child, channel.port2, shutdown=1)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("hi")
        await trio.sleep(0.5)
        sup.cancel()
    assert ended == [10.0]
    assert trio.current_time() == 10.0


# -- a shutdown launches nothing, and a child stopped before it began never runs -----------


@pytest.mark.parametrize("run", range(6))  # the timer and the caller wake in either order
async def test_a_cancel_when_a_back_off_is_due_launches_nothing(
    autojump_clock: Any, logs: list[dict[str, Any]], run: int
) -> None:
    began: list[int] = []

    async def child() -> None:
        number = actors.current_actor().incarnation
        began.append(number)
        if number == 1:
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor(backoff=Backoff(initial=1.0)) as sup:
        handle = sup.spawn(child)
        await trio.sleep_until(1.0)  # the back-off is due now too
        if handle.statistics().state is ActorState.RESTARTING:  # the timer has not run yet
            sup.cancel()
            assert handle.statistics().state is ActorState.STOPPED
            restarted = [e for e in logs if e["event"] == "actor_restarted"]
            assert restarted == []
        else:
            sup.cancel()
    if not [e for e in logs if e["event"] == "actor_restarted"]:
        assert began == [1]


@pytest.mark.parametrize("shutdown", [5.0, 0])
async def test_a_child_cancelled_before_it_began_never_runs(shutdown: float) -> None:
    """`spawn` then an immediate `cancel`: the function's body never runs, and its
    coroutine is closed (no 'never awaited' warning)."""
    ran: list[str] = []

    async def child(port: actors.MessagePort) -> None:
        ran.append("body")

    async with open_supervisor() as sup:
        channels = [MessageChannel(), MessageChannel()]
        handles = [sup.spawn(child, c.port2, shutdown=shutdown) for c in channels]
        for handle in handles:
            handle.cancel()
        for handle in handles:
            await handle.wait()
        for channel in channels:  # the child's end was closed with it
            with pytest.raises(trio.EndOfChannel):
                await channel.port1.receive()
    assert ran == []


# -- timers of children long gone hold nothing --------------------------------------------


async def test_children_that_ended_in_time_are_not_kept_by_their_deadline(
    autojump_clock: Any,
) -> None:
    """A child cancelled with a long `shutdown` that ends at once is collectable: its
    deadline timer does not keep it (or its arguments) until the deadline."""
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    try:
        refs: list[weakref.ref[actors.ActorHandle]] = []

        async def child(payload: bytes) -> None:
            await trio.sleep_forever()

        async with open_supervisor() as sup:
            for _ in range(300):
                handle = sup.spawn(child, bytes(1000), shutdown=3600)
                await trio.testing.wait_all_tasks_blocked()
                handle.cancel()
                await handle.wait()
                refs.append(weakref.ref(handle))
            del handle
            gc.collect()
            # the last one is kept until the next spawn: that one begins after it
            assert sum(r() is not None for r in refs) <= 1
            assert len(sup._driver.timers) <= 130  # compacted once mostly dead
            sup.cancel()
    finally:
        structlog.reset_defaults()


async def test_children_stopped_during_their_back_off_are_not_kept_by_it(
    autojump_clock: Any,
) -> None:
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    try:
        refs: list[weakref.ref[actors.ActorHandle]] = []

        async def child(payload: bytes) -> None:
            raise Boom

        async with open_supervisor(
            max_restarts=10**6, within=1.0, backoff=Backoff(initial=3600, cap=3600)
        ) as sup:
            for _ in range(300):
                handle = sup.spawn(child, bytes(1000))
                await trio.testing.wait_all_tasks_blocked()  # down, waiting its back-off
                assert handle.statistics().state is ActorState.RESTARTING
                handle.cancel()
                await handle.wait()
                refs.append(weakref.ref(handle))
            del handle
            gc.collect()
            # the last one is kept until the next spawn: that one begins after it
            assert sum(r() is not None for r in refs) <= 1
            assert len(sup._driver.groups) == 0
            sup.cancel()
    finally:
        structlog.reset_defaults()


async def test_many_pending_back_offs_all_restart(autojump_clock: Any) -> None:
    """2000 children down at once under a back-off: every one restarts at its due time."""
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    try:
        go = trio.Event()

        async def child() -> None:
            if actors.current_actor().incarnation == 1:
                await go.wait()
                raise Boom
            await trio.sleep_forever()

        async with open_supervisor(max_restarts=10**6, backoff=Backoff(initial=2.0)) as sup:
            handles = [sup.spawn(child) for _ in range(2000)]
            await trio.testing.wait_all_tasks_blocked()
            go.set()
            await trio.sleep(1)
            assert sup.statistics().restarting == 2000
            await trio.sleep(1.5)
            assert {h.incarnation for h in handles} == {2}
            assert sup.statistics().running == 2000
            assert len(sup._driver.timers) == 0
            sup.cancel()
    finally:
        structlog.reset_defaults()


# -- what start() says, and what statistics() count ---------------------------------------


async def test_start_says_the_child_was_stopped_by_its_handle(autojump_clock: Any) -> None:
    async def slow(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(10)
        task_status.started()

    messages: list[str] = []
    async with trio.open_nursery() as nursery, open_supervisor() as sup:

        async def starter() -> None:
            with pytest.raises(RuntimeError) as caught:
                await sup.start(slow, name="s")
            messages.append(str(caught.value))

        nursery.start_soon(starter)
        await trio.sleep(1)
        [handle] = sup.children
        handle.cancel()
        await handle.wait()
        await trio.testing.wait_all_tasks_blocked()
    assert messages == [
        "root/s was stopped by ActorHandle.cancel(), before it called task_status.started()"
    ]


async def test_statistics_count_every_child_in_exactly_one_state(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """`running + restarting + stopping == children`; members of a group restart still
    winding down are `restarting`; a TEMPORARY member (stopped for good) is `stopping`."""

    async def slow_stop() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(5)

    async def crasher() -> None:
        if actors.current_actor().incarnation == 1:
            await trio.sleep(1)
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL) as sup:
        a = sup.spawn(slow_stop, name="a")
        t = sup.spawn(slow_stop, name="t", restart=Restart.TEMPORARY)
        sup.spawn(crasher, name="c")
        await trio.sleep(1.5)  # c crashed: t, then a, are being stopped (5 s each)
        stats = sup.statistics()
        assert (stats.children, stats.running, stats.restarting, stats.stopping) == (3, 0, 2, 1)
        assert t.statistics().state is ActorState.STOPPING
        assert a.statistics().state is ActorState.RESTARTING
        await trio.sleep(10)
        stats = sup.statistics()
        assert (stats.children, stats.running, stats.restarting, stats.stopping) == (2, 2, 0, 0)
        a.cancel()
        stats = sup.statistics()
        assert (stats.running, stats.restarting, stats.stopping) == (1, 0, 1)
        sup.cancel()
    assert sup.statistics().children == 0


def test_statistics_work_after_the_run_is_over() -> None:
    async def main() -> actors.Supervisor:
        async def crasher() -> None:
            if actors.current_actor().incarnation < 3:
                raise Boom

        with structlog.testing.capture_logs():
            async with open_supervisor(max_restarts=5) as sup:
                handle = sup.spawn(crasher, restart=Restart.TRANSIENT)
                await handle.wait()
        return sup

    sup = trio.run(main)
    stats = sup.statistics()
    assert stats.children == 0
    assert stats.restarts == 2
    assert stats.intensity_left == 3


# -- names, paths and odd values -----------------------------------------------------------


class _Named:
    def __init__(self, name: object) -> None:
        self.__name__ = name

    async def __call__(self) -> None:
        await trio.sleep_forever()


@pytest.mark.parametrize("bad", ["db/writer", "", 42, None])
async def test_a_default_name_is_never_a_bad_name(bad: object) -> None:
    async with open_supervisor() as sup:
        handle = sup.spawn(_Named(bad))
        assert handle.name == "actor"
        assert handle.path == "root/actor"
        sup.cancel()


async def test_an_actor_has_one_unnamed_supervisor_open_at_a_time() -> None:
    """A second one would give its children the same paths as the first's."""
    errors: list[str] = []

    async def parent() -> None:
        async with open_supervisor():
            try:
                async with open_supervisor():
                    pass
            except ValueError as exc:
                errors.append(str(exc))
            async with open_supervisor(name="second") as named:
                assert named.path == "root/parent/second"
        async with open_supervisor():  # the first is closed: a new one may open
            pass

    async with open_supervisor() as sup:
        handle = sup.spawn(parent, restart=Restart.TRANSIENT)
        await handle.wait()
    assert len(errors) == 1
    assert "root/parent already has an open supervisor at 'root/parent'" in errors[0]


@pytest.mark.parametrize("shutdown", [10**400, float("inf")])
async def test_a_shutdown_too_large_for_a_float_means_no_deadline(
    autojump_clock: Any, logs: list[dict[str, Any]], shutdown: float
) -> None:
    async def slow() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(15)

    async with open_supervisor() as sup:
        sup.spawn(slow, shutdown=shutdown)
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    assert trio.current_time() == 15
    assert "actor_shutdown_timeout" not in [e["event"] for e in logs]
