"""A process actor's process: `python -m actors._process.child SOCK LIFELINE NODE PARENT CID`.

It makes its node (named by its parent), links it to its parent's over the inherited socket,
waits for `hello` on the control channel, imports the actor's function, and runs one
incarnation of it under a supervisor with the parent's path, so `current_actor()`, paths and
supervisors inside work as they would in the parent. When the function ends it sends `done`,
with the slot's ports going home, and exits. If its parent dies, the lifeline breaks and it
exits at once, whatever it was doing.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import runpy
import socket
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog
import trio

__all__ = ["main"]

EXIT_ORPHANED = 70  # the parent died: nobody is left to tell anything


def _watch_lifeline(fd: int) -> None:
    """Exit the moment the parent is gone (its end of the lifeline closes)."""
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    os._exit(EXIT_ORPHANED)


def main(argv: list[str]) -> int:
    sock_fd, lifeline, node, parent, cid = (int(a) for a in argv)
    threading.Thread(target=_watch_lifeline, args=(lifeline,), daemon=True).start()
    trio.run(_child, sock_fd, node, parent, cid)
    return 0


async def _child(sock_fd: int, name: int, parent: int, cid: int) -> None:
    from .._ports import MessagePort
    from .._queue import PortCore
    from .._wire.node import Node, RemoteEnd, set_local_node
    from .link import SocketLink

    node = Node(name)
    set_local_node(node)
    link = SocketLink(node, parent, socket.socket(fileno=sock_fd))
    node.add_link(parent, link, parent=True)
    core = PortCore(node.token)
    core.peer = RemoteEnd(node, core, cid, 1, parent)
    core.collectable = True
    control = MessagePort._create(core)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.run)
        try:
            _join_names(await control.receive())  # before `hello`: serve/connect reach the root
            hello = await control.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return
        await _incarnation(control, hello.data)
        control.close()
        await link.flush()  # `done` and the slot's ports must leave before the process does
        link.close()


async def _incarnation(control: Any, hello: Any) -> None:
    """Run the actor's function once, as the parent asked; then say `done`."""
    from .._ports import MessagePort
    from .._supervisor import open_inner_supervisor
    from .spawn import crash_outcome

    _, info, args, _ = hello
    sys.path[:] = info["path"]
    fn = _import(info["module"], info["qualname"], info["main"])
    if info["log"]:
        _ship_logs(control)
    home: list[Any] = []
    async with open_inner_supervisor(info["supervisor"]) as sup:
        actor, starter = sup._spawn_here(
            fn, tuple(args), info["name"], info["number"], info["with_status"]
        )
        actor._ports_home = home.extend

        async def listen() -> None:
            async for event in control:  # ends if the parent goes: then stop as if cancelled
                if event.data and event.data[0] != "cancel":
                    continue
                break
            sup.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            if starter is not None:
                await starter.done.wait()
                if starter.error is None:
                    control.post_message(("started", starter.value), starter.ports)
            await actor.wait()
            nursery.cancel_scope.cancel()
    crash = actor._last_crash  # after the block: a cancel ends its body early
    slots = [p for p in home if type(p) is MessagePort]
    back = [p for p in slots if p._core is not None]
    indices = [i for i, p in enumerate(slots) if p._core is not None]
    outcome = None if crash is None else crash_outcome(crash)
    try:
        control.post_message(("done", outcome, indices), back)
    except Exception:  # the crash does not clone: what can be said about it goes
        assert outcome is not None
        control.post_message(("done", [None, *outcome[1:]], indices), back)


def _import(module: str, qualname: str, main: str | None) -> Any:
    if module == "__main__":
        if "__mp_main__" not in sys.modules:  # the parent's script, as multiprocessing does
            namespace = runpy.run_path(main or "", run_name="__mp_main__")
            mod = type(sys)("__mp_main__")
            mod.__dict__.update(namespace)
            sys.modules["__mp_main__"] = mod
        return getattr(sys.modules["__mp_main__"], qualname)
    return getattr(importlib.import_module(module), qualname)


def _ship_logs(control: Any) -> None:
    """Send this process's log events to the parent, which logs them with its pipeline."""

    def ship(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        fields = {
            k: v if isinstance(v, str | int | float | bool | type(None)) else repr(v)
            for k, v in event.items()
            if k != "event"
        }
        with contextlib.suppress(Exception):
            control.post_message(("log", method, event.get("event", ""), fields))
        raise structlog.DropEvent

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,
            ship,
        ],
        cache_logger_on_first_use=False,
    )


def _join_names(event: Any) -> None:
    from .names import join

    join(event)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
