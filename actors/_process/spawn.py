"""The parent's side of a process actor: start its process, talk to it, reap it.

Each incarnation is a new process, started with trio's process API (never a fork of this
trio process): `python -m actors._process.child`, given a socketpair to this run's node and a
*lifeline*, a pipe whose other end only this process holds, so the child sees its parent die
even if nothing else tells it. The two talk over a control channel, a port pair across the
link: the parent sends `hello` (where the function is, and the arguments, the slot's ports
moving with them) and `cancel`; the child sends `started` (for `Supervisor.start`), `log`
(its log events) and `done` (how the incarnation ended, the slot's ports moving home).

The rules (`docs/explanation/processes.md` states them for users):

- A crash in the child is the actor's crash, with its type, message and the child's
  traceback; a process that ends without `done` is a `ProcessDiedError` with its exit status
  or signal. Either way, the supervisor decides what comes next.
- Cancelling the incarnation asks the child to cancel its actor; the supervisor's deadline
  for it ends in a real kill (SIGKILL).
- The process is always waited for (reaped) before the incarnation is over: no zombie.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from typing import TYPE_CHECKING, Any, Final, final

import structlog
import trio

from .._exceptions import ProcessDiedError, RemoteError
from .._log import logger
from .._ports import MessagePort
from .._queue import PortCore
from .._wire.node import RemoteEnd, local_node, new_name
from . import names
from .link import SocketLink

if TYPE_CHECKING:
    from .._actor import ActorHandle
    from .._owner import Incarnation
    from .._supervisor import Supervisor

__all__ = ["Where", "run_process", "where"]

REAP_GRACE: Final = 5.0
"""Seconds a child may take to exit after its `done`, before it is killed."""


@final
class Where:
    """Where a process actor's function is, for the child to import it."""

    __slots__ = ("main", "module", "qualname")

    def __init__(self, module: str, qualname: str, main: str | None) -> None:
        self.module = module
        self.qualname = qualname
        self.main = main  # the main script, when the function is defined in it


def where(fn: object) -> Where:
    """Check that `fn` can be found by a child process, and say where it is.

    Raises:
        TypeError: `fn` is a lambda, a closure, a method, or not reachable as
            `module.qualname` (saying how to fix it).
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    name = repr(qualname or fn)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(f"a process actor's function must be a module-level function, not {fn!r}")
    if "<lambda>" in qualname or "<locals>" in qualname or "." in qualname:
        raise TypeError(
            f"{name} cannot run in another process: it must be a function defined at the top"
            " level of a module (not a lambda, a closure or a method), so that the child can"
            " import it by its module and name"
        )
    found = getattr(sys.modules.get(module), qualname, None)
    if found is not fn:
        raise TypeError(f"{name} is not {module}.{qualname}: the child could not import it")
    main = None
    if module == "__main__":
        main = getattr(sys.modules["__main__"], "__file__", None)
        if main is None:
            raise TypeError(
                f"{name} is defined in __main__, which has no file (an interactive session,"
                " python -c): define it in a module the child can import"
            )
        main = os.path.abspath(main)
    return Where(module, qualname, main)


def _control(node: Any, cid: int, location: int) -> MessagePort:
    """This side (end 0) of the control channel with a child's node."""
    core = PortCore(node.token)
    core.peer = RemoteEnd(node, core, cid, 0, location)
    core.collectable = True  # it lives exactly as long as the child does
    port: MessagePort = MessagePort._create(core)
    return port


def _child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in sys.path if p)
    return {**os.environ, "PYTHONPATH": path}


async def run_process(sup: Supervisor, actor: ActorHandle, inc: Incarnation) -> None:
    """Run one incarnation of a process actor: returns when its function returned; raises
    its crash (or `ProcessDiedError`); cancelled, it stops the child and waits for it."""
    node = local_node()
    child, cid = new_name(), new_name()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    lifeline, lifeline_keep = os.pipe()
    command = [
        sys.executable,
        "-m",
        "actors._process.child",
        str(theirs.fileno()),
        str(lifeline),
        str(child),
        str(node.name),
        str(cid),
    ]
    try:
        process = await trio.lowlevel.open_process(
            command, pass_fds=(theirs.fileno(), lifeline), env=_child_env(), cwd=os.getcwd()
        )
    except BaseException:
        ours.close()
        os.close(lifeline_keep)
        raise
    finally:
        theirs.close()
        os.close(lifeline)
    actor._pid = process.pid
    inc.kill = process.kill
    link = SocketLink(node, child, ours)
    node.add_link(child, link)
    control = _control(node, cid, child)
    names.send(control)  # before `hello`: the child's way to the root's names
    done: list[Any] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.run)
            _hello(control, actor, inc)
            try:
                await _serve(control, actor, inc, done)
            except trio.Cancelled:
                control.post_message(("cancel",))
                with trio.CancelScope(shield=True):
                    await _serve(control, actor, inc, done)
                raise
            finally:
                await _reap(process)
                nursery.cancel_scope.cancel()
    finally:
        control.close()
        os.close(lifeline_keep)
        actor._pid = None
        inc.kill = None
    _ended(actor, process, done)


def _hello(control: MessagePort, actor: ActorHandle, inc: Incarnation) -> None:
    fn: Where = actor._process
    ports = [p for p in actor._current if type(p) is MessagePort and p._core is not None]
    info = {
        "module": fn.module,
        "qualname": fn.qualname,
        "main": fn.main,
        "path": list(sys.path),
        "name": actor._name,
        "supervisor": actor._supervisor._path,
        "number": inc.number,
        "with_status": actor._with_status,
        "log": structlog.is_configured(),
    }
    args = actor._fresh_args()
    control.post_message(("hello", info, args, len(ports)), ports)


async def _serve(
    control: MessagePort, actor: ActorHandle, inc: Incarnation, done: list[Any]
) -> None:
    """Handle what the child sends until its `done` (or until it is gone)."""
    if done:
        return
    while True:
        try:
            event = await control.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return
        data = event.data
        kind = data[0] if isinstance(data, (list, tuple)) and data else None
        if kind == "done":
            done.append((data, event.ports))
            return
        if kind == "started":
            _started(actor, inc, data[1])
        elif kind == "log":
            _relog(actor, data)


def _started(actor: ActorHandle, inc: Incarnation, value: object) -> None:
    from .._actor import TaskStatus

    TaskStatus(actor).started(value)


def _relog(actor: ActorHandle, data: Any) -> None:
    """A log event from the child, into this process's pipeline, with its path and pid."""
    try:
        _, level, event, fields = data
        fields = dict(fields)
        fields.setdefault("actor", actor._path)
        fields["pid"] = actor._pid
        getattr(logger(), level if level in ("debug", "info", "warning", "error") else "error")(
            str(event), **fields
        )
    except Exception:  # a malformed log line from a child changes nothing here
        pass


async def _reap(process: trio.Process) -> None:
    """Wait for the child to exit (it does after `done`, or once its socket is gone); kill it
    if it does not within `REAP_GRACE` seconds. Never returns before it is reaped."""
    with trio.CancelScope(shield=True):
        with trio.move_on_after(REAP_GRACE):
            await process.wait()
        if process.returncode is None:
            process.kill()
        await process.wait()


def _ended(actor: ActorHandle, process: trio.Process, done: list[Any]) -> None:
    """How the incarnation ended: the slot's ports come home; a crash is raised."""
    if not done:
        raise ProcessDiedError(actor._path, process.pid, process.returncode)
    (data, ports) = done[0]
    _, outcome, indices = data[0], data[1], data[2]
    _home(actor, ports, indices)
    if outcome is None:
        return
    error = outcome[0]
    text = outcome[1]
    if isinstance(error, BaseException):
        error.add_note(f"raised in process {process.pid}; its traceback:\n{text}")
        raise error
    raise RemoteError(outcome[2], outcome[3], text)


def _home(actor: ActorHandle, ports: tuple[MessagePort, ...], indices: list[int]) -> None:
    """The slot's ports, back from the child: they replace the ones that went."""
    current = list(actor._current)
    slots = [i for i, p in enumerate(current) if type(p) is MessagePort]
    back = dict(zip(indices, ports, strict=False))
    for k, i in enumerate(slots):
        port = back.get(k)
        if port is None:  # the child moved it away (or it did not come back): detached here
            port = MessagePort._create(None)
            port._state = "transferred"
        current[i] = port
    actor._current = current


def crash_outcome(error: BaseException) -> list[Any]:
    """How a crash travels in `done`: the exception (if it clones), its traceback text, and its
    type name and message for when it does not."""
    text = "".join(traceback.format_exception(error))
    kind = type(error)
    return [error, text, f"{kind.__module__}.{kind.__qualname__}", str(error)]
