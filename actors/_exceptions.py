"""Every public exception of actors, in one place.

The hierarchy::

    TypeError
     +-- DataCloneError          a value cannot be structured-cloned or transferred
    Exception
     +-- TooManyRestartsError    a supervisor gave up: its children crashed too often
     +-- trio.TooSlowError
          +-- Lagged             a receiver fell behind a broadcast and lost messages
     +-- trio.ClosedResourceError
          +-- InvalidStateError  post_message on a closed BroadcastChannel

actors also raises trio's own exceptions where their meaning fits exactly:

- ``trio.ClosedResourceError``: *you* closed this port (or transferred it away).
- ``trio.BrokenResourceError``: the *other* side is gone (``send()`` to a port whose peer closed).
- ``trio.EndOfChannel``: not an error; the peer closed and every message it sent was received.
- ``trio.BusyResourceError``: ``receive()`` on a port whose messages go to event handlers.
- ``trio.BrokenResourceError`` from ``ask()``: the replier closed its end or died first.
"""

from __future__ import annotations

from typing import final

import trio

__all__ = ["DataCloneError", "InvalidStateError", "Lagged", "TooManyRestartsError"]


@final
class DataCloneError(TypeError):
    """A message (or its transfer list) holds something that cannot be cloned or transferred.

    Raised by ``post_message`` and ``send`` before anything is sent or detached: a call that
    raises it has no effect at all. The message names the offending value's type and where it
    sits, e.g. ``message['jobs'][3]`` or ``transfer[1]``.

    Attributes:
        value: the offending object.
        path: where it sits, as a Python expression rooted at ``message`` or ``transfer``.
    """

    def __init__(self, reason: str, *, value: object = None, path: str = "message") -> None:
        super().__init__(f"{path}: {reason}")
        self.value = value
        self.path = path
        self.reason = reason


@final
class TooManyRestartsError(Exception):
    """A supervisor made more than ``max_restarts`` restarts within ``within`` seconds.

    Raised from ``open_supervisor``'s ``async with`` after the supervisor stopped every
    child and closed their ports. ``__cause__`` is the last crash. Inside a supervisor's
    child it is just another crash, so a tree of supervisors escalates as OTP's does.

    Attributes:
        path: the supervisor that gave up.
        max_restarts, within: its restart intensity.
    """

    def __init__(self, message: str, *, path: str, max_restarts: int, within: float) -> None:
        super().__init__(message)
        self.path = path
        self.max_restarts = max_restarts
        self.within = within


@final
class Lagged(trio.TooSlowError):
    """This port fell behind a broadcast and ``missed`` of its messages were dropped.

    Raised once by ``receive()`` (and ``async for``) on the receiving end of a member of a
    ``PortCollection`` whose slow-member policy is ``DROP_OLDEST``, in place of the messages
    it lost; the next ``receive()`` returns the oldest message still queued. Event handlers
    see it as a ``"lagged"`` event whose ``data`` is ``missed``. A ``trio.TooSlowError``, so
    generic slow-consumer handling catches it (as tractor's ``Lagged``).
    """

    def __init__(self, missed: int) -> None:
        super().__init__(f"this port fell behind a broadcast: {missed} messages were dropped")
        self.missed = missed


@final
class InvalidStateError(trio.ClosedResourceError):
    """The web's ``InvalidStateError``: ``post_message`` on a ``BroadcastChannel`` after
    ``close()``. It is checked before the message is cloned. A ``trio.ClosedResourceError``,
    as it is trio's "you closed this" condition."""
