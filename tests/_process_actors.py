"""Process actors for tests/test_process_lifecycle.py: module-level, so a child can import them.

Each reports on the port it is given, so the test learns what happened in the child from
messages (never from sleeps): ``("pid", pid, incarnation)`` once it runs, then what its
scenario says.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from typing import Any

import structlog
import trio

import actors
from actors import MessageChannel, MessagePort


class ActorFailure(Exception):
    """An exception whose class the parent has imported: it crosses as itself."""


def _hello(port: MessagePort) -> None:
    port.post_message(("pid", os.getpid(), actors.current_actor().incarnation))


async def returns(port: MessagePort) -> None:
    """Report, then return."""
    _hello(port)


async def returns_when_told(port: MessagePort) -> None:
    """Report, then return when the port says so."""
    _hello(port)
    event = await port.receive()
    assert event.data == "return"


async def talks_until_cut_off(port: MessagePort) -> None:
    """Report, then read until the port's peer is gone; then raise, saying so."""
    _hello(port)
    async for _ in port:
        pass
    incarnation = actors.current_actor().incarnation
    raise ActorFailure(f"incarnation {incarnation} pid {os.getpid()}: my port's peer is gone")


async def reads_one_then_raises(port: MessagePort) -> None:
    """Report; echo what it reads, with its incarnation; the first incarnation raises after
    reading one message."""
    _hello(port)
    incarnation = actors.current_actor().incarnation
    async for event in port:
        port.post_message(("read", event.data, incarnation))
        if incarnation == 1:
            raise ActorFailure("after one message")


async def raises(port: MessagePort, kind: str) -> None:
    """Report, then raise: `ActorFailure`, or a class only the child has (`child_only`)."""
    _hello(port)
    if kind == "child_only":
        import _child_only_errors  # never imported by the parent

        raise _child_only_errors.ChildOnlyError("only the child knows this class")
    raise ActorFailure("it went wrong in the child")


async def ends(port: MessagePort, how: str) -> None:
    """Take a port of its own (from a message), post on it, then end the process `how`."""
    _hello(port)
    event = await port.receive()
    [own] = event.ports
    for i in range(3):
        own.post_message(i)
    port.post_message("posted")  # after the three, on another port: they left first
    if how == "exit":
        os._exit(3)
    elif how == "segfault":
        ctypes.string_at(0)
    await trio.sleep_forever()  # the test kills it from outside


async def posts_from_finally(port: MessagePort) -> None:
    """Report, then wait; on the way out (cancelled), post from `finally`."""
    _hello(port)
    try:
        await trio.sleep_forever()
    finally:
        port.post_message("finally")


async def ignores_cancel(port: MessagePort) -> None:
    """Report, then sleep in a shielded scope: a cancel never reaches it."""
    _hello(port)
    with trio.CancelScope(shield=True):
        await trio.sleep_forever()


async def starts(port: MessagePort, *, task_status: Any) -> None:
    """`started()` with a port in the value; echo what comes on that port."""
    channel = MessageChannel()
    task_status.started({"port": channel.port2, "pid": os.getpid()})
    try:
        async for event in channel.port1:
            channel.port1.post_message(("echo", event.data))
    finally:
        port.post_message("finally")


async def crashes_before_started(*, task_status: Any) -> None:
    """Raise before `started()`."""
    raise ActorFailure("crashed before started()")


async def never_starts(port: MessagePort, *, task_status: Any) -> None:
    """Report, then wait without calling `started()`; post from `finally`."""
    _hello(port)
    try:
        await trio.sleep_forever()
    finally:
        port.post_message("finally")


async def logs_an_event(port: MessagePort) -> None:
    """Log an event with the application's structlog, then report."""
    structlog.get_logger("app").info("child_says", answer=42)
    _hello(port)


async def spawns_a_grandchild(port: MessagePort, directory: str) -> None:
    """Hold a file in `directory` while it runs; report; run a process actor of its own
    (`grandchild`) that does the same."""
    with _held(directory, "child"):
        _hello(port)
        async with actors.open_supervisor() as sup:
            sup.spawn(grandchild, port, directory, process=True)


async def grandchild(port: MessagePort, directory: str) -> None:
    """Hold a file in `directory` while it runs; report; wait."""
    with _held(directory, "grandchild"):
        _hello(port)
        await trio.sleep_forever()


@contextlib.contextmanager
def _held(directory: str, name: str) -> Iterator[None]:
    path = os.path.join(directory, f"{name}-{os.getpid()}")
    open(path, "x").close()
    try:
        yield
    finally:  # runs only if the process ends by a cancel
        os.unlink(path)


async def sleeps(port: MessagePort) -> None:
    """Report, then wait."""
    _hello(port)
    await trio.sleep_forever()
