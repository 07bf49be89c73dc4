"""serve(name) and connect(name) across processes: names live at the tree's root.

Real processes (process actors); each test proves afterwards that it left no child process.
The actors the children run are in `_service_peers.py`.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import close_ports
from _service_peers import (
    Store,
    echo_client,
    echo_server,
    gated_echo_server,
    giving_up_client,
    middle,
    self_client,
    store_server,
    waiting_client,
)

import actors
from actors import MessageChannel, Restart, ServiceNotFoundError, connect, open_supervisor, serve
from actors._services import _Registry


async def _ask(port: actors.MessagePort, data: object) -> Any:
    port.post_message(data)
    return (await port.receive()).data


async def test_a_process_actor_serves_and_the_parent_connects() -> None:
    """A `serve` in a child is visible to a `connect` here as soon as `start()` returned (the
    child said `started()` after its `serve` began: causal order)."""
    async with open_supervisor() as sup:
        pid = await sup.start(echo_server, "echo", "child", process=True)
        assert pid != os.getpid()
        port = await connect("echo")
        assert await _ask(port, 1) == ("child", pid, 1)
        assert await _ask(port, 2) == ("child", pid, 2)
        port.close()
        sup.cancel()


async def test_wrap_calls_a_store_served_by_a_process_actor() -> None:
    """`Incoming.expose` in a child, `wrap` here: calls, results and errors cross."""
    async with open_supervisor() as sup:
        pid = await sup.start(store_server, "kv", process=True)
        async with await connect("kv") as port:
            kv = actors.wrap(port, Store)
            await kv.put("a", 1)
            assert await kv.get("a") == 1
            assert await kv.pid() == pid
            with pytest.raises(KeyError):
                await kv.get("nope")
        sup.cancel()


async def test_the_parent_serves_and_a_process_actor_connects() -> None:
    """A `connect` in a child reaches a `serve` block of the root."""
    out = MessageChannel()
    async with trio.open_nursery() as nursery:
        await nursery.start(echo_server, "here", "root")
        async with open_supervisor() as sup:
            handle = sup.spawn(
                echo_client, "here", out.port2, process=True, restart=Restart.TEMPORARY
            )
            pid, answer = (await out.port1.receive()).data
            assert pid != os.getpid()
            assert answer == ("root", os.getpid(), "ping")
            await handle.wait()
        nursery.cancel_scope.cancel()
    out.port1.close()


async def test_a_connect_in_a_child_to_a_name_nobody_serves_raises_there() -> None:
    """`ServiceNotFoundError` in the child, as in-process."""
    out = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(echo_client, "nobody", out.port2, process=True, restart=Restart.TEMPORARY)
        assert (await out.port1.receive()).data == ("not found", "nobody")
    out.port1.close()


async def test_a_waiting_connect_in_a_child_gets_through_once_the_root_serves() -> None:
    """`connect(name, wait=True)` in a child waits at the root until someone serves."""
    out = MessageChannel()
    async with trio.open_nursery() as nursery, open_supervisor() as sup:
        client = sup.spawn(
            waiting_client, "later", out.port2, process=True, restart=Restart.TEMPORARY
        )
        assert (await out.port1.receive()).data == "not found"
        assert (await out.port1.receive()).data == "waiting"  # its connect is at the root now
        assert "later" in _Registry.current().parked
        await nursery.start(echo_server, "later", "root")
        _, answer = (await out.port1.receive()).data
        assert answer == ("root", os.getpid(), "ping")
        await client.wait()
        nursery.cancel_scope.cancel()
    out.port1.close()


async def test_a_waiting_connect_given_up_in_a_child_takes_no_client() -> None:
    """A child's waiting connect that was cancelled is forgotten at the root: the server that
    comes later never sees it."""
    out = MessageChannel()
    async with open_supervisor() as sup:
        client = sup.spawn(
            giving_up_client, "late", out.port2, process=True, restart=Restart.TEMPORARY
        )
        assert (await out.port1.receive()).data == "waiting"
        assert "late" in _Registry.current().parked
        out.port1.post_message("give up")
        assert (await out.port1.receive()).data == "gave up"
        await client.wait()
    async with serve("late") as incoming:
        port = await connect("late")
        port.post_message("first")
        accepted = await incoming.__anext__()  # the root's client, not the child's
        assert (await accepted.receive()).data == "first"
        close_ports(port, accepted)
    assert "late" not in _Registry.current().parked
    out.port1.close()


async def test_sibling_process_actors_serve_and_connect_to_each_other() -> None:
    """A child's connect reaches a sibling's serve (through the root)."""
    out = MessageChannel()
    async with open_supervisor() as sup:
        server = await sup.start(echo_server, "sibling", "a", process=True)
        client = sup.spawn(
            echo_client, "sibling", out.port2, process=True, restart=Restart.TEMPORARY
        )
        pid, answer = (await out.port1.receive()).data
        assert answer == ("a", server, "ping")
        assert pid not in (server, os.getpid())
        await client.wait()
        sup.cancel()
    out.port1.close()


async def test_a_process_actor_connects_to_a_name_it_serves_itself() -> None:
    """Both ends of the connection end up in the child, and it works both ways."""
    out = MessageChannel()
    async with open_supervisor() as sup:
        client = sup.spawn(self_client, out.port2, process=True, restart=Restart.TEMPORARY)
        pid, ping, pong = (await out.port1.receive()).data
        assert ping == ("me", pid, "ping")
        assert pong == ("me", pid, "pong")
        await client.wait()
    out.port1.close()


async def test_a_grandchild_serves_and_connects() -> None:
    """A process actor's own process actors reach the root's names: one serves (the root
    connects to it), one connects to a name the root serves."""
    out = MessageChannel()
    async with trio.open_nursery() as nursery:
        await nursery.start(echo_server, "root", "r")
        async with open_supervisor() as sup:
            child, grandchild = await sup.start(middle, out.port2, process=True)
            async with await connect("grandchild") as port:
                assert await _ask(port, "hi") == ("g", grandchild, "hi")
            pid, answer = (await out.port1.receive()).data
            assert answer == ("r", os.getpid(), "ping")
            assert pid not in (child, grandchild, os.getpid())
            sup.cancel()
        nursery.cancel_scope.cancel()
    out.port1.close()


async def test_connections_take_turns_across_an_in_process_and_a_process_server() -> None:
    """Round robin in the order the servers began serving, wherever they live."""
    async with trio.open_nursery() as nursery, open_supervisor() as sup:
        await nursery.start(echo_server, "pool", "here")
        pid = await sup.start(echo_server, "pool", "there", process=True)
        ports = [await connect("pool") for _ in range(4)]
        answers = [await _ask(port, i) for i, port in enumerate(ports)]
        assert answers == [
            ("here", os.getpid(), 0),
            ("there", pid, 1),
            ("here", os.getpid(), 2),
            ("there", pid, 3),
        ]
        for port in ports:
            port.close()
        sup.cancel()
        nursery.cancel_scope.cancel()


async def test_a_killed_server_process_takes_its_name_and_its_restart_serves_again() -> None:
    """SIGKILL: the connection closes, the name is gone at once (`ServiceNotFoundError`), a
    waiting connect waits, and the restarted incarnation serves it again."""
    async with serve("gate") as gates, open_supervisor() as sup:
        handle = sup.spawn(gated_echo_server, "phoenix", process=True)
        async with await gates.__anext__() as gate:  # each incarnation serves once told to
            gate.post_message("go")
        port = await connect("phoenix", wait=True)
        first = handle.pid
        assert first is not None
        assert await _ask(port, 1) == ("gated", first, 1)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(trio.EndOfChannel):
            await port.receive()
        port.close()
        with pytest.raises(ServiceNotFoundError):
            await connect("phoenix")  # its door went with the process, before the close above
        got: list[actors.MessagePort] = []
        async with trio.open_nursery() as nursery:

            async def reconnect() -> None:
                got.append(await connect("phoenix", wait=True))

            nursery.start_soon(reconnect)
            async with await gates.__anext__() as gate:  # the restarted incarnation waits
                with pytest.raises(ServiceNotFoundError):
                    await connect("phoenix")
                assert got == []
                gate.post_message("go")
        second = handle.pid
        assert second not in (None, first)
        assert await _ask(got[0], 2) == ("gated", second, 2)
        got[0].close()
        sup.cancel()
