"""Every public exception of actors, in one place.

The hierarchy::

    TypeError
     +-- DataCloneError          a value cannot be structured-cloned or transferred
    LookupError
     +-- ServiceNotFoundError    connect(name): nobody serves that name
    Exception
     +-- TooManyRestartsError    a supervisor gave up: its children crashed too often
     +-- RemoteError             a wrap() call or a process actor failed with an exception
                                 that cannot be rebuilt here: its type name, message and
                                 traceback text
     +-- ProcessDiedError        a process actor's process ended without a word from its
                                 actor: killed by a signal, os._exit(), a crash of the
                                 interpreter
     +-- trio.TooSlowError
          +-- Lagged             a receiver fell behind a broadcast and lost messages
     +-- trio.ClosedResourceError
          +-- InvalidStateError  post_message on a closed BroadcastChannel

actors also raises trio's own exceptions where their meaning fits exactly:

- `trio.ClosedResourceError`: *you* closed this port (or transferred it away).
- `trio.BrokenResourceError`: the *other* side is gone (`send()` to a port whose peer closed).
- `trio.EndOfChannel`: not an error; the peer closed and every message it sent was received.
- `trio.BusyResourceError`: `receive()` on a port whose messages go to event handlers.
- `trio.BrokenResourceError` from `ask()`: the replier closed its end or died first.
"""

from __future__ import annotations

import signal
from typing import final

import trio

__all__ = [
    "DataCloneError",
    "InvalidStateError",
    "Lagged",
    "ProcessDiedError",
    "RemoteError",
    "ServiceNotFoundError",
    "TooManyRestartsError",
]


@final
class DataCloneError(TypeError):
    """A message (or its transfer list) holds something that cannot be cloned or transferred.

    Raised by whatever clones a value ([`post_message`][actors.MessagePort.post_message],
    `send`, [`Supervisor.spawn`][actors.Supervisor.spawn],
    [`structured_clone`][actors.structured_clone], ...) before anything is sent or detached:
    a call that raises it has no effect at all. The message names the offending value's type
    and where it sits, e.g. `message['jobs'][3]` or `transfer[1]`.

    Args:
        reason: why the value cannot be cloned or transferred.
        value: the offending object.
        path: where it sits.
    """

    def __init__(self, reason: str, *, value: object = None, path: str = "message") -> None:
        super().__init__(f"{path}: {reason}")
        self.value = value
        """The offending object."""
        self.path = path
        """Where it sits, as a Python expression rooted at `message`, `transfer`, or `args`
        (for [`spawn`][actors.Supervisor.spawn]'s arguments)."""
        self.reason = reason
        """Why it cannot be cloned or transferred (the error message without `path`)."""


@final
class TooManyRestartsError(Exception):
    """A supervisor made more than `max_restarts` restarts within `within` seconds.

    Raised from [`open_supervisor`][actors.open_supervisor]'s `async with` after the
    supervisor stopped every child and closed their ports. `__cause__` is the last crash
    (`None` when the last child to end returned instead). Inside a supervisor's child it is
    just another crash, so a tree of supervisors escalates as OTP's does.

    Args:
        message: the error message.
        path: the supervisor that gave up.
        max_restarts: its `max_restarts`.
        within: its `within`, in seconds.
    """

    def __init__(self, message: str, *, path: str, max_restarts: int, within: float) -> None:
        super().__init__(message)
        self.path = path
        """The path of the supervisor that gave up."""
        self.max_restarts = max_restarts
        """The restarts it allowed within `within` seconds."""
        self.within = within
        """The length of its intensity window, in seconds."""


@final
class Lagged(trio.TooSlowError):
    """This port fell behind a broadcast and `missed` of its messages were dropped.

    Raised once by `receive()` (and `async for`) on the receiving end of a member of a
    [`PortCollection`][actors.PortCollection] whose slow-member policy is `DROP_OLDEST`, in
    place of the messages it lost; the next `receive()` returns the oldest message still
    queued. A port's `lagged` listeners get a `"lagged"` event whose `data` is `missed`
    instead; `message` handlers alone are not told. A `trio.TooSlowError`, so generic
    slow-consumer handling catches it (as tractor's `Lagged`).

    Args:
        missed: how many messages were dropped.
    """

    def __init__(self, missed: int) -> None:
        super().__init__(f"this port fell behind a broadcast: {missed} messages were dropped")
        self.missed = missed
        """How many messages were dropped."""


@final
class InvalidStateError(trio.ClosedResourceError):
    """The web's `InvalidStateError`: `post_message` on a closed `BroadcastChannel`.

    Raised by [`BroadcastChannel.post_message`][actors.BroadcastChannel.post_message] after
    `close()`, checked before the message is cloned. A `trio.ClosedResourceError`, as it is
    trio's "you closed this" condition.
    """


@final
class ServiceNotFoundError(LookupError):
    """[`connect(name)`][actors.connect] found nobody serving `name`.

    Raised at once, unless `connect` was called with `wait=True`. A `LookupError`, as a
    missing key is. Names are those of [`serve`][actors.serve] blocks running in this trio run
    and in the process actors of its tree.

    Args:
        name: the name nobody serves.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"nobody serves {name!r} (connect(name, wait=True) waits for it)")
        self.name = name
        """The name nobody serves."""


@final
class RemoteError(Exception):
    """A method called through [`wrap`][actors.wrap], or a process actor, raised an exception
    that could not be raised here as itself: it cannot be cloned, or (from another process)
    its class is not imported in this one.

    An exception that can be rebuilt is raised as its own type instead (with the remote
    traceback as a note). This one carries what could be said about it.

    Args:
        type_name: the qualified name of the remote exception's type, e.g. `"mod.Error"`.
        message: its `str()`.
        traceback: the remote traceback, as text.
    """

    def __init__(self, type_name: str, message: str, traceback: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        """The qualified name of the remote exception's type."""
        self.message = message
        """The remote exception's `str()`."""
        self.traceback = traceback
        """The remote traceback, as text."""


@final
class ProcessDiedError(Exception):
    """The process of a process actor ended without a word from the actor: it was killed by a
    signal (SIGKILL, a segfault's SIGSEGV, ...), called `os._exit()`, or its interpreter
    failed. To its supervisor this is a crash of the actor, like any other.

    Its message says how the process ended: `process actor root/worker (pid 4242) was killed
    by SIGKILL`, or `... exited with status 3`.

    Args:
        path: the actor's path.
        pid: its process id.
        returncode: the process's exit status (negative: killed by that signal).
    """

    def __init__(self, path: str, pid: int, returncode: int | None) -> None:
        super().__init__(f"process actor {path} (pid {pid}) {_how(returncode)}")
        self.path = path
        """The actor's path."""
        self.pid = pid
        """The process id."""
        self.returncode = returncode
        """The exit status: negative for the signal that killed it (as `subprocess` has it)."""


def _how(returncode: int | None) -> str:
    """How a process ended, in words: `exited with status 3`, `was killed by SIGKILL`."""
    if returncode is None:
        return "is still running"
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name}"
