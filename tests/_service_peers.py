"""The process actors of test_services_processes.py (a small module, quick for a child to import).

Each serves or connects to names from a process of its own and reports what it saw, with its
pid, on a port it was given.
"""

from __future__ import annotations

import os
from typing import Any

import trio
import trio.testing

import actors
from actors import MessagePort, ServiceNotFoundError, connect, serve


async def echo_server(
    name: str, tag: str = "", task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve `name`: answer each message on each connection with `(tag, pid, data)`;
    `started()` with this process's pid once served."""
    async with serve(name) as incoming:
        task_status.started(os.getpid())
        async with trio.open_nursery() as nursery:
            async for port in incoming:
                nursery.start_soon(_echo_one, port, tag)


async def _echo_one(port: MessagePort, tag: str) -> None:
    async with port:
        async for event in port:
            port.post_message((tag, os.getpid(), event.data))


async def gated_echo_server(name: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """`echo_server`, once told to: each incarnation connects to `"gate"` (waiting for it)
    and serves `name` when a message comes on that connection."""
    async with await connect("gate", wait=True) as gate:
        await gate.receive()
    await echo_server(name, "gated", task_status)


class Store:
    """A key-value store to serve with `expose`."""

    def __init__(self) -> None:
        self.data: dict[str, int] = {}

    def put(self, key: str, value: int) -> None:
        self.data[key] = value

    def get(self, key: str) -> int:
        return self.data[key]  # a KeyError travels back to the caller

    def pid(self) -> int:
        return os.getpid()


async def store_server(name: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve a `Store` as `name` with `Incoming.expose`."""
    async with serve(name) as incoming:
        task_status.started(os.getpid())
        await incoming.expose(Store())


async def echo_client(name: str, out: MessagePort, wait: bool = False) -> None:
    """Connect to `name`, send `"ping"`, and report `(my pid, the answer)` on `out` (or
    `("not found", name)`)."""
    try:
        port = await connect(name, wait=wait)
    except ServiceNotFoundError as error:
        out.post_message(("not found", error.name))
        return
    async with port:
        port.post_message("ping")
        answer = (await port.receive()).data
    out.post_message((os.getpid(), answer))


async def waiting_client(name: str, out: MessagePort) -> None:
    """`connect(name)` first (reports "not found" if so), then `connect(name, wait=True)`:
    says `"waiting"` on `out` only once that connect's request has left this process (every
    task here blocked), then reports as `echo_client` does."""
    try:
        await connect(name)
    except ServiceNotFoundError:
        out.post_message("not found")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo_client, name, out, True)
        await trio.testing.wait_all_tasks_blocked()
        out.post_message("waiting")


async def giving_up_client(name: str, out: MessagePort) -> None:
    """`connect(name, wait=True)`, given up (cancelled) when a message comes on `out`; says
    `"waiting"` once the connect's request has left, and `"gave up"` at the end."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo_client, name, out, True)
        await trio.testing.wait_all_tasks_blocked()
        out.post_message("waiting")
        await out.receive()
        nursery.cancel_scope.cancel()
    out.post_message("gave up")


async def middle(out: MessagePort, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """A process actor with process actors of its own: a grandchild serves `"grandchild"`,
    another connects to the root's `"root"` and reports on `out`."""
    async with actors.open_supervisor() as sup:
        pid = await sup.start(echo_server, "grandchild", "g", process=True)
        task_status.started((os.getpid(), pid))
        sup.spawn(echo_client, "root", out, process=True, restart=actors.Restart.TEMPORARY)
        await trio.sleep_forever()


async def self_client(out: MessagePort) -> None:
    """Serve `"self"` and connect to it from this same process; report the answer."""
    async with trio.open_nursery() as nursery:
        await nursery.start(echo_server, "self", "me")
        async with await connect("self") as port:
            port.post_message("ping")
            answer = (await port.receive()).data
            port.post_message("pong")
            out.post_message((os.getpid(), answer, (await port.receive()).data))
        nursery.cancel_scope.cancel()
