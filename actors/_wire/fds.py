"""The fds a frame carries: who owns each, and what becomes of them at either end.

A message whose `ArrayBuffer`s keep their bytes in memfds (`actors._memfd`) sends those
buffers as fds beside its bytes (`shm`): the payload names each by its index among the
message's *shared buffers*, and the frame says their lengths. Frames pass through nodes on
their way, so the fds of a frame travel with it as an `Fds`, which owns them until someone
takes them: a link closes them once they are sent, a node adopts them as buffers, and any
frame dropped on the way (a closed port, a lost node, a duplicate) closes them with it.

The fds of a frame are in the order its messages are nested: a USER frame's message's own
buffers, then for each port it carries, each queued message's (its own, then its ports', the
same way), then each early frame's (as many as that entry says).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Final, final

from .._buffers import ArrayBuffer
from . import shm
from .shm import close_fds

__all__ = ["MAX_FDS", "Fds", "adopt_shared", "close_fds", "export_shared", "share_shared"]

MAX_FDS: Final = shm.MAX_FDS
"""The most fds one frame carries (253, what one `sendmsg` may pass). A message whose shared
buffers would go past it has the others' bytes copied into the frame instead."""


@final
class Fds:
    """Fds owned by one frame (or by one message of it) until they are taken.

    `take` hands fds over in order; whatever is not taken is closed by `close()`, or when the
    object is collected, so a frame dropped on any path leaks no fd.
    """

    __slots__ = ("_fds", "_next")

    def __init__(self, fds: Iterable[int] = ()) -> None:
        self._fds = list(fds)
        self._next = 0  # the fds before it are taken

    def __len__(self) -> int:
        """How many fds are left to take."""
        return len(self._fds) - self._next

    def __repr__(self) -> str:
        return f"<Fds {self._fds[self._next :]}>"

    def append(self, fd: int) -> None:
        """Own `fd` too, after the others."""
        self._fds.append(fd)

    def extend(self, fds: Iterable[int]) -> None:
        """Own `fds` too, after the others."""
        self._fds.extend(fds)

    def take(self, count: int) -> list[int]:
        """The next `count` fds (fewer if fewer are left), the caller's from now on."""
        start = self._next
        taken = self._fds[start : start + max(count, 0)]
        self._next = start + len(taken)
        return taken

    def take_all(self) -> list[int]:
        """Every fd left, the caller's from now on."""
        return self.take(len(self))

    def close(self) -> None:
        """Close every fd not taken (idempotent)."""
        close_fds(self.take_all())

    def __del__(self) -> None:
        if self._next < len(self._fds):
            self.close()


def export_shared(buffers: list[ArrayBuffer], into: Fds) -> list[int] | None:
    """Detach `buffers` (memfd buffers that nobody else holds, found by the codec) and hand
    their memfds to `into`, in order: their lengths, for the frame.

    Returns:
        The lengths; or `None` if one of them cannot be exported (a memfd that refuses its
        seals): then nothing changed, and the caller copies their bytes instead.
    """
    try:
        exported = shm.export_all(buffers)
    except (OSError, BufferError, ValueError):
        return None
    lengths = []
    for e in exported:
        lengths.append(e.length)
        into.append(e.take_fd())
    return lengths


def share_shared(buffers: list[ArrayBuffer], into: Fds) -> list[int] | None:
    """Like `export_shared`, but `buffers` stay as they are: a duplicate of each memfd's fd
    goes to `into`, so that the receiver maps the very bytes that stay here (for a message
    kept after it is sent, until the receiver has read it).

    Returns:
        The lengths; or `None` if a memfd refuses its seals or no fd can be duplicated: then
        nothing was added to `into`, and the caller copies their bytes instead.
    """
    lengths: list[int] = []
    fds: list[int] = []
    try:
        for buffer in buffers:
            mapping = buffer._memfd()
            if mapping is None:
                raise ValueError("the ArrayBuffer is detached, or its bytes are not in a memfd")
            shm.seal(mapping.fd)
            fds.append(os.dup(mapping.fd))
            lengths.append(len(mapping))
    except (OSError, ValueError):
        close_fds(fds)
        return None
    into.extend(fds)
    return lengths


def adopt_shared(lengths: object, fds: list[int]) -> list[ArrayBuffer]:
    """The buffers a message's shared buffers are here: `fds[i]` is a memfd of `lengths[i]`
    bytes. Takes every fd in `fds` over.

    Raises:
        shm.BadFdError: `lengths` is not a list of lengths, one per fd, or an fd is not a
            sealed memfd of its length (`shm.adopt`). Every fd is closed then.
    """
    try:
        if type(lengths) is not list or len(lengths) != len(fds):
            raise shm.BadFdError(
                f"a message announced {_count(lengths)} shared buffers and came with {len(fds)}"
            )
        buffers = []
        for i, (fd, length) in enumerate(zip(fds, lengths, strict=True)):
            if type(length) is not int:
                raise shm.BadFdError(f"a shared buffer's length is not an int: {length!r:.40}")
            fds[i] = -1  # adopt takes it over (and closes it if it refuses it)
            buffers.append(shm.adopt(fd, length))
    except BaseException:
        close_fds(fd for fd in fds if fd >= 0)
        raise
    return buffers


def _count(lengths: object) -> object:
    return len(lengths) if type(lengths) is list else f"not a list ({type(lengths).__name__})"
