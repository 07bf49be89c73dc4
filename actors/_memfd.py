"""Memfd storage for large ArrayBuffers: an anonymous memory file and its shared mapping.

On Linux a large buffer keeps its bytes in a memfd (`memfd_create`) mapped `MAP_SHARED`, so
that another process can be handed the very same memory by passing the fd (`actors._wire.shm`)
instead of copying the bytes. A memfd has no name in any file system: nothing is left behind in
`/dev/shm` when a process dies, and the memory is freed when the last fd and mapping of it are
closed, in whichever process that happens.

Elsewhere, or when a memfd cannot be made (no `memfd_create`, out of fds), `allocate` returns
`None` and the buffer keeps its bytes in a `bytearray`.
"""

from __future__ import annotations

import mmap
import os
from typing import TYPE_CHECKING, Final, Self, final

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MemfdMapping", "allocate", "copy_of"]

_memfd_create: Callable[[str, int], int] | None = getattr(os, "memfd_create", None)
_MFD_FLAGS: Final = getattr(os, "MFD_CLOEXEC", 0) | getattr(os, "MFD_ALLOW_SEALING", 0)
NAME: Final = "actors-arraybuffer"
"""The memfd's name: `/proc/<pid>/fd` and `/proc/<pid>/maps` show `/memfd:actors-arraybuffer`."""


@final
class MemfdMapping(mmap.mmap):
    """A shared, writable mapping of a whole memfd, that owns the memfd's fd.

    It is the storage of a large `ArrayBuffer`: `memoryview()`, `len()` and `bytes()` work on
    it as on a `bytearray`. Python's `mmap` keeps a duplicate of the fd for itself (before 3.13
    it cannot be told not to), so a live mapping holds two fds. Both, and the mapping, are
    closed by `release()` or when the object is collected.
    """

    __slots__ = ("fd",)

    fd: int
    """The memfd's fd (what `actors._wire.shm.export` sends); -1 once released."""

    def __new__(cls, fd: int, length: int) -> Self:
        """Map the first `length` bytes of memfd `fd`, taking ownership of `fd` on success."""
        self = super().__new__(cls, fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.fd = fd
        return self

    def exported(self) -> bool:
        """Whether a `memoryview` of the mapping, or of a slice or cast of one, is alive.

        `mmap.resize` checks for live exports before anything else and refuses with
        `BufferError`; without exports a negative size is refused next, with `ValueError`,
        before anything changes. So `resize(-1)` tells one case from the other and never
        resizes anything (CPython 3.11 to 3.14 check in this order; a test holds us to it).
        """
        try:
            self.resize(-1)
        except BufferError:
            return True
        except ValueError:
            return False
        raise AssertionError("mmap.resize(-1) succeeded")  # pragma: no cover

    def release(self) -> None:
        """Unmap the memory and close the fd (idempotent).

        Raises:
            BufferError: a `memoryview` of the mapping is alive (nothing is closed then).
        """
        self.close()
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        # No view can be alive here (a view holds a reference to its mapping), and mmap's own
        # deallocation unmaps the memory and closes its duplicate of the fd just after this.
        fd, self.fd = getattr(self, "fd", -1), -1
        if fd >= 0:
            os.close(fd)


def allocate(length: int) -> MemfdMapping | None:
    """A new mapping of `length` zero bytes (`length` > 0), or `None` if no memfd can be made.

    The pages are not touched: the kernel allocates them (zero-filled) when they are first
    used, as for a fresh anonymous mapping.
    """
    if _memfd_create is None:
        return None
    try:
        fd = _memfd_create(NAME, _MFD_FLAGS)
    except OSError:  # ENOSYS (old kernel, sandbox), EMFILE (out of fds), ...
        return None
    try:
        os.ftruncate(fd, length)
        return MemfdMapping(fd, length)
    except OSError:  # ENOMEM, EMFILE (mmap duplicates the fd): the caller falls back
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise


def copy_of(view: memoryview) -> MemfdMapping | bytearray:
    """New storage holding a copy of `view`'s bytes: a memfd mapping, else a `bytearray`."""
    mapping = allocate(view.nbytes) if view.nbytes else None
    if mapping is None:
        return bytearray(view)
    mapping[:] = view if view.c_contiguous else view.tobytes()
    return mapping
