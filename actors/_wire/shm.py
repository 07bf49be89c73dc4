"""Large ArrayBuffers across processes: memfds handed over a Unix socket with SCM_RIGHTS.

A buffer of `SHARED_MEMORY_THRESHOLD` bytes or more keeps its bytes in a memfd
(`actors._memfd`). Moving it to another process is sending that fd: the bytes are never
copied, whatever their size. The sender, for each buffer in the message it sends (the new
objects that the transfer or the clone made; the sender's own buffers are detached already)::

    exports = [shm.export(buf) for buf in buffers]  # None: not in a memfd; send its bytes
    try:
        await shm.send_frame(sock, payload, [e.fd for e in exports if e is not None])
    finally:
        for e in exports:
            if e is not None:
                e.close()  # after sendmsg, never before: the kernel holds the file from then on

The receiver::

    payload, fds = await shm.receive_frame(sock)  # it owns every fd in fds from here on
    ... buf = shm.adopt(fds[i], length) for each buffer the payload announces, and
    ... shm.close_fds(the others), also when decoding the payload fails

The memory is freed when the last fd and mapping of the memfd are closed, in any process; a
memfd has no name, so a process that dies leaks nothing (its fds and mappings die with it).
Peers are trusted not to keep writing a memfd they sent: fd passing is for our own workers.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import socket
import stat
import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final, final

import trio

from .._buffers import ArrayBuffer
from .._memfd import MemfdMapping

if TYPE_CHECKING:
    from types import TracebackType

    from _typeshed import ReadableBuffer

__all__ = [
    "MAX_FDS",
    "MAX_FRAME",
    "SEALS",
    "BadFdError",
    "BadFrameError",
    "ExportedBuffer",
    "adopt",
    "close_fds",
    "export",
    "export_all",
    "receive_frame",
    "seal",
    "send_frame",
]

MAX_FDS: Final = 253
"""The most fds one frame carries: the kernel's `SCM_MAX_FD` (`sendmsg` refuses more)."""

MAX_FRAME: Final = 1 << 30
"""The largest payload `receive_frame` accepts unless told otherwise (1 GiB)."""

# Linux's values (include/uapi/linux/fcntl.h), written out so that this module imports on
# systems whose fcntl module lacks them (there, no fd is a memfd and adopt refuses them all).
_F_ADD_SEALS: Final = 1033
_F_GET_SEALS: Final = 1034
_F_SEAL_SHRINK: Final = 0x02
_F_SEAL_GROW: Final = 0x04
_F_SEAL_WRITE: Final = 0x08
_F_SEAL_FUTURE_WRITE: Final = 0x10

SEALS: Final = _F_SEAL_SHRINK | _F_SEAL_GROW
"""The seals a shared memfd carries: its size is fixed, so that nobody can truncate it under
a mapping (an access past the end of a truncated file kills the process with SIGBUS)."""

_HEADER: Final = struct.Struct("<QI")  # payload length, fd count
_FD_SIZE: Final = array.array("i").itemsize
_CMSG_CLOEXEC: Final = getattr(socket, "MSG_CMSG_CLOEXEC", 0)


class BadFdError(ValueError):
    """`adopt` refused an fd: not a memfd sealed against shrinking and growing, of at least
    the announced length. The fd is closed already."""


class BadFrameError(ValueError):
    """`receive_frame` refused a frame: more fds than allowed, ancillary data cut off
    (`MSG_CTRUNC`), fds that its header does not announce, or a payload over the limit. Every
    fd that came with it is closed already; the socket is no longer at a frame boundary."""


@final
class ExportedBuffer:
    """A memfd on its way to another process: send `fd`, then `close()`.

    Made by `export`, which took the memfd from the buffer. Close it once the frame carrying
    `fd` is sent (from `sendmsg` on, the kernel holds the file itself), never before; close it
    also when sending fails. It is a context manager; if dropped unclosed, the memfd's fd and
    mapping are closed when it is collected.
    """

    __slots__ = ("_length", "_mapping")

    def __init__(self, mapping: MemfdMapping) -> None:
        self._mapping = mapping
        self._length = len(mapping)

    @property
    def fd(self) -> int:
        """The memfd's fd, to send; -1 once closed."""
        return self._mapping.fd

    @property
    def length(self) -> int:
        """The buffer's length in bytes: what the receiver passes to `adopt`."""
        return self._length

    def close(self) -> None:
        """Close the sender's mapping and fd (idempotent)."""
        self._mapping.release()

    def take_fd(self) -> int:
        """Unmap the sender's mapping now and hand its fd to the caller, who must close it
        (once sent): for a sender that queues fds rather than sending at once.

        Raises:
            ValueError: closed already, or its fd was taken.
        """
        mapping = self._mapping
        fd = mapping.fd
        if fd < 0:
            raise ValueError("this ExportedBuffer is closed")
        mapping.close()  # unmaps, and closes mmap's own duplicate of the fd
        mapping.fd = -1
        return fd

    def __enter__(self) -> ExportedBuffer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ExportedBuffer fd={self.fd} length={self._length}>"


def export(buffer: ArrayBuffer) -> ExportedBuffer | None:
    """Seal `buffer`'s memfd and detach `buffer`, so that its fd can be sent.

    Call it on the buffer that the message carries (the new object that a transfer or a clone
    made), not on one that the sender's code still holds: it detaches `buffer` as a transfer
    does. The memfd is sealed against shrinking and growing first (`SEALS`).

    Returns:
        What to send; or `None` if the bytes are not in a memfd (a buffer under
        `SHARED_MEMORY_THRESHOLD`, or no memfd on this system): then send `bytes(buffer)`,
        and `buffer` is left as it was.

    Raises:
        ValueError: `buffer` is detached.
        BufferError: a `memoryview` of `buffer` is alive (nothing changes).
        OSError: the memfd could not be sealed (nothing changes).
    """
    mapping = buffer._memfd()
    if mapping is None:
        if buffer.detached:
            raise ValueError("ArrayBuffer is detached (it was transferred)")
        return None
    if mapping.exported():
        raise BufferError("ArrayBuffer has a live memoryview; release it before exporting")
    if fcntl.fcntl(mapping.fd, _F_GET_SEALS) & SEALS != SEALS:
        fcntl.fcntl(mapping.fd, _F_ADD_SEALS, SEALS)
    buffer._detach()
    return ExportedBuffer(mapping)


def seal(fd: int) -> None:
    """Seal memfd `fd` with `SEALS` (if it is not yet): its size is fixed from now on.

    Raises:
        OSError: it cannot be sealed (not a memfd made to take seals, say).
    """
    if fcntl.fcntl(fd, _F_GET_SEALS) & SEALS != SEALS:
        fcntl.fcntl(fd, _F_ADD_SEALS, SEALS)


def export_all(buffers: Sequence[ArrayBuffer]) -> list[ExportedBuffer]:
    """`export` each of `buffers` (memfd buffers, each listed once), all or none.

    Raises:
        ValueError: one of them is detached, or keeps its bytes elsewhere than in a memfd.
        BufferError: a `memoryview` of one is alive.
        OSError: a memfd could not be sealed.
        Nothing is detached then (some memfds may be sealed: that changes nothing for them).
    """
    for buffer in buffers:
        mapping = buffer._memfd()
        if mapping is None:
            raise ValueError("the ArrayBuffer is detached, or its bytes are not in a memfd")
        if mapping.exported():
            raise BufferError("ArrayBuffer has a live memoryview; release it before exporting")
        if fcntl.fcntl(mapping.fd, _F_GET_SEALS) & SEALS != SEALS:
            fcntl.fcntl(mapping.fd, _F_ADD_SEALS, SEALS)
    exported = []
    for buffer in buffers:
        mapping = buffer._memfd()
        assert mapping is not None
        buffer._detach()
        exported.append(ExportedBuffer(mapping))
    return exported


def adopt(fd: int, length: int) -> ArrayBuffer:
    """The buffer that a peer sent as memfd `fd` holding `length` bytes. Takes `fd` over.

    A peer can send any fd, so `fd` must be a memfd (a regular file that takes seals), sealed
    against shrinking and growing (`SEALS`) and not against writing, of at least `length`
    bytes (`length` > 0); then its first `length` bytes are mapped, shared and writable. The
    buffer owns `fd` from then on: it is closed with the buffer's storage (when the buffer is
    collected, or exported again and sent).

    Raises:
        BadFdError: `fd` breaks a rule above, or cannot be mapped. `fd` is closed.
    """
    try:
        _check(fd, length)
        mapping = MemfdMapping(fd, length)
    except OSError as exc:
        _close_quietly(fd)
        raise BadFdError(f"fd {fd}: cannot map {length} bytes of it ({exc})") from exc
    except BaseException:
        _close_quietly(fd)
        raise
    return ArrayBuffer._adopt(mapping)


def close_fds(fds: Iterable[int]) -> None:
    """Close every fd in `fds`: the fds of a received frame that no buffer adopted."""
    for fd in fds:
        _close_quietly(fd)


async def send_frame(
    sock: trio.socket.SocketType, payload: ReadableBuffer, fds: Sequence[int] = ()
) -> int:
    """Send one frame on a Unix stream socket: `payload`, with `fds` attached (SCM_RIGHTS).

    The frame is a 12-byte header (the payload's length and the number of fds, as
    `struct` `<QI`), then the payload; the fds ride on the header's first byte. The fds stay
    the caller's: close them once this returns or raises (`ExportedBuffer.close`).

    Args:
        sock: a connected `AF_UNIX`, `SOCK_STREAM` trio socket.
        payload: a C-contiguous bytes-like object.
        fds: at most `MAX_FDS` open fds.

    Returns:
        The number of bytes written to the socket: 12 plus the payload's length.

    Raises:
        ValueError: more than `MAX_FDS` fds (nothing is sent).
        trio.BrokenResourceError: the peer is gone.

    A send that raises (cancelled, say) once part of the frame went out leaves the socket in
    the middle of a frame: close it.
    """
    if len(fds) > MAX_FDS:
        raise ValueError(f"a frame carries at most {MAX_FDS} fds, not {len(fds)}")
    with memoryview(payload) as whole, whole.cast("B") as body:
        header = _HEADER.pack(body.nbytes, len(fds))
        total = len(header) + body.nbytes
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        try:
            sent = await sock.sendmsg([header, body], rights)
            while sent < total:
                if sent < len(header):
                    sent += await sock.sendmsg([header[sent:], body])
                else:
                    sent += await sock.send(body[sent - len(header) :])
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise trio.BrokenResourceError("the peer closed its end of the socket") from exc
    return total


async def receive_frame(
    sock: trio.socket.SocketType, *, max_fds: int = MAX_FDS, max_size: int = MAX_FRAME
) -> tuple[bytearray, list[int]]:
    """Receive one frame sent by `send_frame`: its payload, and the fds that came with it.

    The caller owns the fds returned: adopt them or close them (`close_fds`). Whatever goes
    wrong here, every fd that arrived is closed before this raises. The fds arrive with
    `O_CLOEXEC` set. The ancillary buffer has room for `max_fds` fds: more arrive cut off
    (`MSG_CTRUNC`), and the kernel closes those that did not fit. Fds that a peer attaches
    to the middle of a payload are read without room for them, so the kernel closes them.

    Args:
        sock: a connected `AF_UNIX`, `SOCK_STREAM` trio socket.
        max_fds: the most fds accepted with one frame, from 0 to `MAX_FDS`.
        max_size: the largest payload accepted, in bytes.

    Raises:
        trio.EndOfChannel: the peer closed the socket between two frames.
        trio.BrokenResourceError: the peer closed the socket in the middle of a frame, or
            reset it.
        BadFrameError: too many fds, ancillary data cut off, fds that the header does not
            announce, or a payload over `max_size`.
    """
    if not 0 <= max_fds <= MAX_FDS:
        raise ValueError(f"max_fds must be from 0 to {MAX_FDS}, not {max_fds}")
    room = socket.CMSG_SPACE(max_fds * _FD_SIZE) if max_fds else 0
    fds: list[int] = []
    try:
        header = b""
        while len(header) < _HEADER.size:
            data, ancillary, flags, _ = await sock.recvmsg(
                _HEADER.size - len(header), room, _CMSG_CLOEXEC
            )
            _take_fds(ancillary, fds)
            if flags & socket.MSG_CTRUNC:
                raise BadFrameError(
                    f"a frame came with more ancillary data than room for {max_fds} fds "
                    "(MSG_CTRUNC)"
                )
            if len(fds) > max_fds:
                raise BadFrameError(f"a frame came with {len(fds)} fds, over {max_fds}")
            if not data:
                if header or fds:
                    raise trio.BrokenResourceError("the peer closed the socket mid-frame")
                raise trio.EndOfChannel
            header += data
        size, count = _HEADER.unpack(header)
        if count != len(fds):
            raise BadFrameError(f"a frame announced {count} fds and came with {len(fds)}")
        if size > max_size:
            raise BadFrameError(f"a frame announced {size} bytes of payload, over {max_size}")
        payload = bytearray(size)
        with memoryview(payload) as view:
            got = 0
            while got < size:
                n = await sock.recv_into(view[got:])
                if not n:
                    raise trio.BrokenResourceError("the peer closed the socket mid-frame")
                got += n
    except ConnectionResetError as exc:
        close_fds(fds)
        raise trio.BrokenResourceError("the peer reset the socket") from exc
    except BaseException:
        close_fds(fds)
        raise
    return payload, fds


def _take_fds(ancillary: list[tuple[int, int, bytes]], fds: list[int]) -> None:
    """Append the fds of every SCM_RIGHTS message in `ancillary` to `fds`."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(array.array("i", data[: len(data) - len(data) % _FD_SIZE]))


def _check(fd: int, length: int) -> None:
    try:
        st = os.fstat(fd)
    except OSError as exc:
        raise BadFdError(f"fd {fd} is not an open file ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadFdError(f"fd {fd} is not a memfd: it is a {_kind(st.st_mode)}")
    try:
        seals = fcntl.fcntl(fd, _F_GET_SEALS)
    except OSError:
        raise BadFdError(f"fd {fd} is not a memfd: it takes no seals") from None
    if seals & SEALS != SEALS:
        raise BadFdError(
            f"fd {fd}: the memfd is not sealed against shrinking and growing (seals "
            f"{seals:#x}), so a truncation could kill its reader with SIGBUS"
        )
    if seals & (_F_SEAL_WRITE | _F_SEAL_FUTURE_WRITE):
        raise BadFdError(f"fd {fd}: the memfd is sealed against writing (seals {seals:#x})")
    if length <= 0:
        raise BadFdError(f"a shared buffer's length is positive, not {length}")
    if st.st_size < length:
        raise BadFdError(
            f"fd {fd}: the memfd holds {st.st_size} bytes, fewer than the {length} announced"
        )


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "pipe"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):  # EBADF: it was not open
        os.close(fd)
