"""serve(name) and connect(name): names served by blocks, one fresh port per client."""

from __future__ import annotations

from typing import Any

import pytest
import structlog.testing
import trio
import trio.testing
from _helpers import close_ports

import actors
from actors import Restart, ServiceNotFoundError, connect, open_supervisor, serve


class Boom(Exception):
    """A scripted crash."""


async def echo_server(
    name: str, tag: str = "", task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve `name`: answer every message on every connection, tagged."""
    async with serve(name) as incoming:
        task_status.started()
        async with trio.open_nursery() as nursery:
            async for port in incoming:
                nursery.start_soon(echo_one, port, tag)


async def echo_one(port: actors.MessagePort, tag: str) -> None:
    async with port:  # a server closes the connections it accepted
        async for event in port:
            if event.data == "crash":
                raise Boom
            port.post_message((tag, event.data))


async def test_connect_reaches_the_block_serving_the_name() -> None:
    """A connection is a port pair: both directions work, one fresh pair per client."""
    async with trio.open_nursery() as nursery:
        await nursery.start(echo_server, "echo")
        first, second = await connect("echo"), await connect("echo")
        first.post_message(1)
        second.post_message(2)
        assert (await first.receive()).data == ("", 1)
        assert (await second.receive()).data == ("", 2)
        close_ports(first, second)
        nursery.cancel_scope.cancel()


async def test_connect_to_a_name_nobody_serves_raises_at_once() -> None:
    """``ServiceNotFoundError`` is a ``LookupError`` that names the name."""
    with pytest.raises(ServiceNotFoundError) as info:
        await connect("nobody")
    assert isinstance(info.value, LookupError)
    assert info.value.name == "nobody"
    assert "'nobody'" in str(info.value)


async def test_a_name_is_served_only_while_its_block_runs() -> None:
    """After the block, the name is gone again."""
    async with serve("brief"), await connect("brief") as port:
        assert isinstance(port, actors.MessagePort)
    with pytest.raises(ServiceNotFoundError):
        await connect("brief")


async def test_connect_wait_waits_for_the_name_to_appear() -> None:
    """``wait=True`` returns once a block serves the name."""
    got: list[actors.MessagePort] = []

    async def client() -> None:
        got.append(await connect("late", wait=True))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        async with serve("late") as incoming:
            await trio.testing.wait_all_tasks_blocked()
            assert len(got) == 1
            server_end = await incoming.__anext__()
            got[0].post_message("hi")
            assert (await server_end.receive()).data == "hi"
            close_ports(server_end)


async def test_a_waiting_connect_can_be_cancelled() -> None:
    """A cancelled ``connect(wait=True)`` leaves nothing behind: a later server is unaffected."""
    with trio.move_on_after(0.01):
        await connect("never", wait=True)
    async with serve("never"):
        close_ports(await connect("never"))


async def test_several_servers_of_a_name_take_turns() -> None:
    """Connections go to each server in turn, in the order they began serving."""
    async with trio.open_nursery() as nursery:
        await nursery.start(echo_server, "pool", "a")
        await nursery.start(echo_server, "pool", "b")
        tags = []
        for i in range(4):
            async with await connect("pool") as port:
                port.post_message(i)
                tags.append((await port.receive()).data[0])
        assert tags == ["a", "b", "a", "b"]
        nursery.cancel_scope.cancel()


async def test_the_other_servers_of_a_name_go_on_when_one_stops() -> None:
    """A pool keeps serving a name after one of its servers has stopped."""
    async with trio.open_nursery() as nursery:
        done = trio.Event()

        async def brief(task_status: Any) -> None:
            async with serve("pool2"):
                task_status.started()
                await done.wait()

        await nursery.start(brief)
        await nursery.start(echo_server, "pool2", "b")
        done.set()
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(3):
            async with await connect("pool2") as port:
                port.post_message("x")
                assert (await port.receive()).data == ("b", "x")
        nursery.cancel_scope.cancel()


async def test_a_connection_closes_when_the_servers_incarnation_crashes() -> None:
    """Ports the server accepted belong to its incarnation: a crash closes them, and the
    client sees ``EndOfChannel``; it connects again to the restarted server."""
    with structlog.testing.capture_logs():
        async with open_supervisor() as sup:
            sup.spawn(echo_server, "svc", restart=Restart.PERMANENT)
            async with await connect("svc", wait=True) as port:
                port.post_message("crash")
                with pytest.raises(trio.EndOfChannel):
                    await port.receive()
            for _ in range(3):  # a connect may still reach the server as it unwinds: again
                async with await connect("svc", wait=True) as port:
                    port.post_message("again")
                    try:
                        assert (await port.receive()).data == ("", "again")
                        break
                    except trio.EndOfChannel:
                        continue
            else:
                pytest.fail("never reached the restarted server")
            sup.cancel()


async def test_a_client_never_accepted_sees_its_port_close() -> None:
    """A client that connected while the server was not reading, then the block ended."""
    async with serve("slow"):
        port = await connect("slow")
        port.post_message("lost")
    with pytest.raises(trio.EndOfChannel):
        await port.receive()


async def test_connect_during_a_restart_finds_the_next_incarnation(autojump_clock: Any) -> None:
    """While the server is down (its back-off), connect(wait=True) waits, then connects."""
    incarnations: list[int] = []

    async def flaky() -> None:
        me = actors.current_actor()
        async with serve("flaky") as incoming:
            async for port in incoming:  # the actor's: they close when its incarnation ends
                incarnations.append(me.incarnation)
                if me.incarnation == 1:
                    raise Boom
                port.post_message(me.incarnation)

    with structlog.testing.capture_logs():
        async with open_supervisor(backoff=actors.Backoff(initial=1.0)) as sup:
            sup.spawn(flaky)
            close_ports(await connect("flaky", wait=True))  # its arrival crashes incarnation 1
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(ServiceNotFoundError):
                await connect("flaky")  # down for its back-off
            async with await connect("flaky", wait=True) as port:
                assert (await port.receive()).data == 2
            assert trio.current_time() == pytest.approx(1.0)
            sup.cancel()
    assert incarnations == [1, 2]


async def test_a_serve_block_in_an_actor_ends_with_the_actor() -> None:
    """Structured: the name goes when the actor stops for good."""
    async with open_supervisor() as sup:
        handle = sup.spawn(echo_server, "owned")
        close_ports(await connect("owned", wait=True))
        handle.cancel()
        await handle.wait()
        with pytest.raises(ServiceNotFoundError):
            await connect("owned")


async def test_names_belong_to_one_trio_run() -> None:
    """A name served in one run is not visible in another."""

    async def other_run() -> None:
        with pytest.raises(ServiceNotFoundError):
            await connect("here")

    async with serve("here"):
        await trio.to_thread.run_sync(trio.run, other_run)


async def test_a_connect_still_waiting_is_reported(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """``connect(wait=True)`` still waiting after ``warn_after`` seconds: one warning."""
    with trio.move_on_after(10):
        await connect("absent", wait=True, warn_after=3.0)
    [warning] = [e for e in logs if e["event"] == "connect_waiting"]
    assert warning["name"] == "absent"
    assert warning["waited"] == pytest.approx(3.0)
    assert warning["log_level"] == "warning"


async def test_serve_and_connect_refuse_bad_names() -> None:
    """A name is a non-empty str."""
    with pytest.raises(TypeError):
        async with serve(3):  # type: ignore[arg-type]
            pass
    with pytest.raises(ValueError, match="empty"):
        await connect("")


def test_serve_outside_a_trio_run_says_so() -> None:
    """``serve`` needs a trio run, as ``BroadcastChannel`` does."""

    async def enter() -> None:
        async with serve("x"):
            pass

    coro = enter()
    with pytest.raises(RuntimeError, match="inside a trio run"):
        coro.send(None)
