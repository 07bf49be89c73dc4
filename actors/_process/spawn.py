"""The parent's side of a process actor: start its process, talk to it, reap it.

Each incarnation is a new process, started with trio's process API (never a fork of this
trio process): `python -m actors._process.child`, given a socketpair to this run's node and a
*lifeline*, a pipe whose other end only this process holds, so the child sees its parent die
even if nothing else tells it. The two talk over a control channel, a port pair across the
link: the parent sends `hello` (where the function is, and the arguments, the slot's ports
moving with them) and `cancel`; the child sends `started` (for `Supervisor.start`), `log`
(its log events) and `done` (how the incarnation ended, the slot's ports moving home).

The rules (`docs/explanation/processes.md` states them for users):

- A crash in the child is the actor's crash: the exception itself if this process has its
  class (else a `RemoteError` with its type's name and message), with the child's traceback
  in a note. A process that ends without `done` is a `ProcessDiedError` with its exit status
  or signal. Either way, the supervisor decides what comes next; a restart is a new process.
- Cancelling the incarnation asks the child to cancel its actor (the link stays up, so what
  its finally blocks send arrives); the supervisor's deadline for it ends in SIGKILL.
- The slot's ports never leave: they are kept here (`actors._wire.home`), each message until
  the child has read it, so whatever way the process ends, what it had not read waits for the
  next incarnation. A slot port the child moved on has left the slot.
- The process is always waited for (reaped) before the incarnation is over: no zombie.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import traceback
from typing import TYPE_CHECKING, Any, Final, final

import structlog
import trio

from .._buffers import ArrayBuffer
from .._exceptions import ProcessDiedError, RemoteError
from .._log import logger
from .._ports import MessageChannel, MessagePort
from .._queue import PortCore
from .._wire import codec
from .._wire.fds import MAX_FDS
from .._wire.frames import USER
from .._wire.home import FREE, SLOT, CursorPage, HomeEnd
from .._wire.node import RemoteEnd, local_node, new_name
from . import names
from .link import SocketLink

if TYPE_CHECKING:
    from .._actor import ActorHandle
    from .._owner import Incarnation
    from .._supervisor import Supervisor

__all__ = ["Where", "run_process", "where"]

FUNCTION_ENV: Final = "ACTORS_PROCESS_FUNCTION"
"""The environment variable that tells a child (`child.py`) where its function is (JSON),
read and removed before anything else, so that the function is imported before any message
is decoded."""

MAIN: Final[dict[str, str | None]] = {"main": None, "main_module": None}
"""The parent's main script, once imported here as `__mp_main__`: a function of it spawned
as a process actor from here runs in the grandchild from the same script."""

REAP_GRACE: Final = 5.0
"""Seconds a child may take to exit after its `done`, before it is killed."""


@final
class Where:
    """Where a process actor's function is, for the child to import it."""

    __slots__ = ("main", "main_module", "module", "qualname")

    def __init__(
        self, module: str, qualname: str, main: str | None, main_module: str | None = None
    ) -> None:
        self.module = module
        self.qualname = qualname
        # When the function is defined in the main script: the script's path, or the name of
        # the module run as `python -m name`. The child runs it as `__mp_main__`.
        self.main = main
        self.main_module = main_module


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
    if module == "__mp_main__" and (MAIN["main"] or MAIN["main_module"]):
        # in a process actor's process, a function of the parent's main script: the same
        return Where("__main__", qualname, MAIN["main"], MAIN["main_module"])
    if module != "__main__":
        return Where(module, qualname, None)
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    run_as = getattr(spec, "name", None)
    if isinstance(run_as, str) and run_as != "__main__":  # python -m run_as
        if run_as.rpartition(".")[2] == "__main__":
            raise TypeError(
                f"{name} is defined in {run_as}, which a child cannot run without running the"
                " whole program again: define it in a module the child can import"
            )
        return Where(module, qualname, None, run_as)
    path = getattr(main, "__file__", None)
    if not isinstance(path, str) or path.startswith("<"):
        raise TypeError(
            f"{name} is defined in __main__, which has no file (an interactive session,"
            " python -c, a script read from stdin): define it in a module the child can import"
        )
    return Where(module, qualname, os.path.abspath(path))


def _control(node: Any, cid: int, location: int) -> MessagePort:
    """This side (end 0) of the control channel with a child's node."""
    core = PortCore(node.token)
    core.peer = RemoteEnd(node, core, cid, 0, location)
    core.collectable = True  # it lives exactly as long as the child does
    port: MessagePort = MessagePort._create(core)
    return port


def _child_env(fn: Where) -> dict[str, str]:
    path = os.pathsep.join(p for p in sys.path if p)
    where = {
        "module": fn.module,
        "qualname": fn.qualname,
        "main": fn.main,
        "main_module": fn.main_module,
        "path": list(sys.path),
        "argv": list(sys.argv),
    }
    return {**os.environ, "PYTHONPATH": path, FUNCTION_ENV: json.dumps(where)}


async def run_process(sup: Supervisor, actor: ActorHandle, inc: Incarnation) -> None:
    """Run one incarnation of a process actor: returns when its function returned; raises
    its crash (or `ProcessDiedError`); cancelled, it stops the child and waits for it."""
    node = local_node()
    child, cid = new_name(), new_name()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    lifeline, lifeline_keep = os.pipe()
    page = CursorPage()
    command = [
        sys.executable,
        "-m",
        "actors._process.child",
        str(theirs.fileno()),
        str(lifeline),
        str(child),
        str(node.name),
        str(cid),
        str(page.fd),
    ]
    try:
        process = await trio.lowlevel.open_process(
            command,
            pass_fds=(theirs.fileno(), lifeline, page.fd),
            env=_child_env(actor._process),
            cwd=os.getcwd(),
        )
    except BaseException:
        ours.close()
        os.close(lifeline_keep)
        page.close()
        raise
    finally:
        theirs.close()
        os.close(lifeline)
    report = _Report()
    failure: Exception | None = None
    homes: list[HomeEnd] = []
    actor._pid = process.pid
    inc.kill = process.kill
    try:
        link = SocketLink(node, child, ours)
        node.add_link(child, link)
        control = _control(node, cid, child)
        names.send(control)  # before `hello`: the child's way to the root's names
        link_scope = trio.CancelScope(shield=True)  # the link outlives a cancel: it says it

        async def run_link() -> None:
            with link_scope:
                await link.run()

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_link)
                try:
                    homes = _hello(control, actor, inc, page)
                    await _serve(control, actor, report)
                except trio.Cancelled:
                    control.post_message(("cancel",))
                    with trio.CancelScope(shield=True):
                        await _serve(control, actor, report)
                    raise
                except Exception as exc:  # raised below as itself, not in the nursery's group
                    failure = exc
                finally:
                    link_scope.cancel()  # the child exits once it sees its link go
        finally:
            control.close()
    finally:
        await _reap(process)
        logger(actor=actor._path).debug(
            "actor_process_exited", pid=process.pid, returncode=process.returncode
        )
        os.close(lifeline_keep)
        page.close()
        actor._pid = None
        inc.kill = None
        _slots_back(actor, homes)
    if failure is not None:
        raise failure
    _ended(actor, process, report)


@final
class _Report:
    """What the child said about its incarnation."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.error: BaseException | None = None  # its crash, if the exception itself came
        self.done: tuple[Any, tuple[MessagePort, ...]] | None = None  # `done`


def _hello(
    control: MessagePort, actor: ActorHandle, inc: Incarnation, page: CursorPage
) -> list[HomeEnd]:
    """Send the child what to run: its function, its arguments, its slot ports (kept here,
    see `actors._wire.home`). Returns the slot ports' `HomeEnd`s."""
    fn: Where = actor._process
    _revive(actor)
    ports = [p for p in actor._current if type(p) is MessagePort]
    info = {
        "module": fn.module,
        "qualname": fn.qualname,
        "main": fn.main,
        "main_module": fn.main_module,
        "path": list(sys.path),
        "name": actor._name,
        "supervisor": actor._supervisor._path,
        "number": inc.number,
        "with_status": actor._with_status,
        "shutdown": actor._shutdown,
        "log": structlog.is_configured(),
    }
    args = actor._fresh_args()
    core = control._core
    assert core is not None
    assert isinstance(core.peer, RemoteEnd)
    remote = core.peer
    node = remote.node
    # The arguments go as bytes the child decodes once it has imported the function's
    # module (their classes may live there); their ports ride on the hello's frame, and
    # their buffers in memfds go as fds (in the hello itself, beside the bytes). Each
    # incarnation gets copies of the slot's buffers, as small ones are copied into the bytes:
    # what one incarnation writes does not reach the next.
    shared: list[ArrayBuffer] = []
    arguments, _ = codec.encode(args, list[Any](ports), shared, MAX_FDS)
    copies = [buffer.slice() for buffer in shared]
    payload, buffers, fds = node.pack(("hello", info, arguments, copies), (), None)
    homes = [HomeEnd(node, port, remote.location, page, SLOT) for port in ports]
    seq = remote.send_seq
    remote.send_seq = seq + 1
    descriptors = [home.descriptor() for home in homes]
    fields: tuple[object, ...] = (remote.cid, 1 - remote.end, seq, payload, descriptors, False)
    if buffers:
        fields = (*fields, buffers)
    node.send(remote.location, USER, *fields, fds=fds)
    for home in homes:  # what is queued for them follows the hello that makes their ends
        home.pushed()
    return homes


def _slots_back(actor: ActorHandle, homes: list[HomeEnd]) -> None:
    """The process is gone: its slot ports stay with the slot, holding what it had not read;
    one it moved on has left the slot (a detached object takes its place)."""
    current = actor._current
    for home in homes:
        if home.state == FREE:
            for i, obj in enumerate(current):
                if obj is home.port:
                    current[i] = home.give_up_slot()


async def _serve(control: MessagePort, actor: ActorHandle, report: _Report) -> None:
    """Handle what the child sends until its `done` (or until it is gone)."""
    while report.done is None:
        try:
            event = await control.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return
        data = event.data
        kind = data[0] if isinstance(data, (list, tuple)) and data else None
        if kind == "done":
            report.done = (data, event.ports)
        elif kind == "crash" and len(data) == 2 and isinstance(data[1], BaseException):
            report.error = data[1]
        elif kind == "started":
            _started(actor, data[1])
        elif kind == "log":
            _relog(actor, data)
        # else a message that did not decode here (a `crash` whose class this process does
        # not have: the `done` after it says what it was), or nonsense: nothing to do


def _started(actor: ActorHandle, value: object) -> None:
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
    """Wait for the child to exit (it does after `done`, or once its link is gone); kill it
    if it has not within `REAP_GRACE` seconds. Never returns before it is reaped."""
    with trio.CancelScope(shield=True):
        with trio.move_on_after(REAP_GRACE):
            await process.wait()
        if process.returncode is None:
            process.kill()
        await process.wait()


def _ended(actor: ActorHandle, process: trio.Process, report: _Report) -> None:
    """How the incarnation ended: a crash is raised."""
    if report.done is None:
        raise ProcessDiedError(actor._path, process.pid, process.returncode)
    outcome = report.done[0][1]
    if outcome is None:
        return
    text, type_name, message = outcome
    error = report.error
    if error is None:
        error = RemoteError(type_name, message, text)
    error.add_note(f"raised in process {process.pid} ({actor._path}); its traceback:\n{text}")
    raise error


def _revive(actor: ActorHandle) -> None:
    """A slot port the last incarnation closed or moved on (a detached object, which cannot
    travel) is replaced by a port whose peer is gone, so the next incarnation starts with
    every port it was spawned with, and finds that one at `EndOfChannel`."""
    current = actor._current
    if all(type(p) is not MessagePort or p._core is not None for p in current):
        return
    revived = list(current)
    for i, port in enumerate(revived):
        if type(port) is MessagePort and port._core is None:
            channel = MessageChannel()
            channel.port1.close()
            revived[i] = channel.port2
    actor._current = revived


def crash_outcome(error: BaseException) -> list[str]:
    """How a crash is told in `done`: its traceback text, its type's name and its message
    (all the parent has when the exception itself cannot cross)."""
    text = "".join(traceback.format_exception(error))
    kind = type(error)
    try:
        message = str(error)
    except Exception:
        message = "<str() failed>"
    return [text, f"{kind.__module__}.{kind.__qualname__}", message]
