"""A process actor's process: `python -m actors._process.child SOCK LIFELINE NODE PARENT CID
CURSORS`.

It makes its node (named by its parent), links it to its parent's over the inherited socket,
waits for `hello` on the control channel, imports the actor's function, and runs one
incarnation of it under a supervisor with the parent's path, so `current_actor()`, paths and
supervisors inside work as they would in the parent. Its slot ports' queues stay in the
parent (`actors._wire.home`): it writes how many messages it has read from each into the
CURSORS page the two share. When the function ends it sends `done` and exits. An exception of
the function, or one that stops it from running at all (its module does not import here), is
the actor's crash: it goes to the parent in `done`.

If its parent dies, the lifeline breaks: the child cancels its actor as the parent would
have, gives it the actor's `shutdown` deadline, then exits with `EXIT_ORPHANED` (70). It
ignores SIGINT: Ctrl-C interrupts the parent, whose supervisor stops the child in order.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import runpy
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any, Final, final

import structlog
import trio

from .._wire.classes import set_main_module

__all__ = ["main"]

EXIT_ORPHANED: Final = 70
"""The exit status of a child whose parent died (EX_SOFTWARE): nobody is left to read it."""

ORPHAN_GRACE: Final = 5.0
"""Seconds an orphan whose `shutdown` is `None` (no deadline) gets to finish its cleanup
before it exits anyway: its parent would have waited, but nobody is left to wait."""


@final
class _Lifeline:
    """The pipe whose other end only the parent holds: it breaks when the parent dies.

    Then the child stops as its parent would have stopped it: its link is closed, which
    cancels its actor (its finally blocks run), and if that takes longer than the actor's
    `shutdown` deadline (`ORPHAN_GRACE` if it has none: an orphan always ends), the process
    exits at once. Either way with `EXIT_ORPHANED`.
    """

    __slots__ = ("_lock", "_on_break", "broken", "fd", "grace")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.broken = threading.Event()
        self.grace: float | None = 0.0  # the actor's `shutdown`, once `hello` says it
        self._lock = threading.Lock()
        self._on_break: Callable[[], object] | None = None

    def arm(self, on_break: Callable[[], object]) -> None:
        """From the trio run: call `on_break` there when the lifeline breaks (now, if it has)."""
        token = trio.lowlevel.current_trio_token()
        with self._lock:
            if not self.broken.is_set():
                self._on_break = lambda: token.run_sync_soon(on_break)
                return
        on_break()

    def watch(self) -> None:
        """The watching thread: wait for the break; then stop the run, within the grace."""
        with contextlib.suppress(OSError):
            while os.read(self.fd, 1):
                pass
        with self._lock:
            self.broken.set()
            on_break = self._on_break
        if on_break is not None:
            with contextlib.suppress(trio.RunFinishedError):
                on_break()
        grace = self.grace
        if grace is None or not math.isfinite(grace):  # nobody is left to wait that long
            grace = ORPHAN_GRACE
        time.sleep(grace)
        os._exit(EXIT_ORPHANED)


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C reaches every process of the terminal's foreground group: the parent's
    supervisor stops this one in order (cancel, then its deadline), so it does nothing here."""


def main(argv: list[str]) -> int:
    sock_fd, fd, node, parent, cid, cursors = (int(a) for a in argv)
    lifeline = _Lifeline(fd)
    threading.Thread(target=lifeline.watch, daemon=True, name="lifeline").start()
    # A handler, not SIG_IGN: that would be inherited by every program the actor runs.
    signal.signal(signal.SIGINT, _interrupted)
    trio.run(_child, sock_fd, node, parent, cid, cursors, lifeline)
    return EXIT_ORPHANED if lifeline.broken.is_set() else 0


async def _child(
    sock_fd: int, name: int, parent: int, cid: int, cursors: int, lifeline: _Lifeline
) -> None:
    from .._ports import MessagePort
    from .._queue import PortCore
    from .._wire.home import map_cursor_page
    from .._wire.node import Node, RemoteEnd, set_local_node
    from .link import SocketLink

    node = Node(name)
    node.up_page = map_cursor_page(cursors)
    set_local_node(node)
    link = SocketLink(node, parent, socket.socket(fileno=sock_fd))
    node.add_link(parent, link, parent=True)
    core = PortCore(node.token)
    core.peer = RemoteEnd(node, core, cid, 1, parent)
    core.collectable = True
    control = MessagePort._create(core)
    # The function first, before the link reads a frame: the main script or the module it
    # lives in may define the classes of the first messages to its slot ports.
    from .spawn import FUNCTION_ENV

    function = _Function(json.loads(os.environ.pop(FUNCTION_ENV)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.run)
        lifeline.arm(link.close)  # the parent gone: as if its link broke
        try:
            _join_names(await control.receive())  # before `hello`: serve/connect reach the root
            hello = await control.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return
        lifeline.grace = hello.data[1]["shutdown"]
        await _incarnation(control, hello, function)
        control.close()
        await link.flush()  # `done`, and all it posted, must leave before the process does
        link.close()


@final
class _Function:
    """The actor's function, imported as soon as the process starts (or why it could not
    be): `where` says where it is, as `spawn.where` found it in the parent."""

    __slots__ = ("error", "fn")

    def __init__(self, where: dict[str, Any]) -> None:
        sys.path[:] = where["path"]
        sys.argv[:] = where["argv"]  # as the parent's, as multiprocessing does
        self.fn: Any = None
        self.error: Exception | None = None
        try:
            self.fn = _import(where)
        except Exception as exc:  # reported as the incarnation's crash, once it can be
            self.error = exc


async def _incarnation(control: Any, hello: Any, function: _Function) -> None:
    """Run the actor's function once, as the parent asked; then say `done`."""
    from .._supervisor import open_inner_supervisor
    from .._wire import codec

    _, info, arguments, buffers = hello.data
    if info["log"]:
        _ship_logs(control)
    home: list[Any] = []
    async with open_inner_supervisor(info["supervisor"]) as sup:
        try:
            if function.error is not None:
                raise function.error
            fn = function.fn
            args: Any = codec.decode(arguments, hello.ports, buffers)
            actor, starter = sup._spawn_here(
                fn, tuple(args), info["name"], info["number"], info["with_status"]
            )
        except Exception as exc:  # it never ran: its ports, kept by the parent, stay there
            _done(control, exc)
            return
        actor._ports_home = home.extend  # the slot's ports are kept by the parent: not closed

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
    crash = actor._last_crash  # (after the block: a cancel skips the rest of its body)
    _done(control, crash)


def _done(control: Any, crash: BaseException | None) -> None:
    """Say how the incarnation ended: its crash, as itself if it clones (the parent may not
    have its class: then the `done` after it still tells its type, message and traceback);
    then `done`."""
    from .spawn import crash_outcome

    if crash is not None:
        with contextlib.suppress(Exception):  # it does not clone: `done` says what it was
            control.post_message(("crash", crash))
    outcome = None if crash is None else crash_outcome(crash)
    control.post_message(("done", outcome))


def _import(info: Any) -> Any:
    """The actor's function: from its module, or from the parent's main script, which runs
    here as `__mp_main__` (as multiprocessing's spawn method does; its classes then cross as
    the parent's `__main__` ones)."""
    module, qualname = info["module"], info["qualname"]
    set_main_module("__mp_main__")  # the parent's __main__ is this process's __mp_main__
    from . import spawn  # (this module runs as __main__: state lives in one that does not)

    spawn.MAIN.update(main=info["main"], main_module=info["main_module"])  # for its children
    if module != "__main__":
        return getattr(importlib.import_module(module), qualname)
    if "__mp_main__" not in sys.modules:
        try:
            if info["main_module"] is not None:  # the parent ran `python -m main_module`
                namespace = runpy.run_module(info["main_module"], run_name="__mp_main__")
            else:
                namespace = runpy.run_path(info["main"], run_name="__mp_main__")
        except RuntimeError as exc:
            if "run()" not in str(exc):
                raise
            script = info["main_module"] or info["main"]
            raise RuntimeError(
                f"the main script {script} started its program when the process actor's"
                f" process ran it to find {qualname} ({exc}): put the script's work under"
                ' `if __name__ == "__main__":`, as the spawn method of multiprocessing requires'
            ) from exc
        main = type(sys)("__mp_main__")
        main.__dict__.update(namespace)
        sys.modules["__mp_main__"] = main
    return getattr(sys.modules["__mp_main__"], qualname)


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
