"""Large ArrayBuffers in shared memory: the same buffer in-process, and fds across processes.

A buffer of ``SHARED_MEMORY_THRESHOLD`` bytes or more keeps them in a memfd. In the process
every rule of ``test_buffers.py`` holds for it as for a small one (the tests below run for
both). Across processes (``actors._wire.shm``) it moves as an fd: nothing of its bytes goes
through the socket, fds that a peer should not have sent are refused and closed, and nothing
leaks, not even when a process holding a buffer is killed. Child processes run
``_shm_peer.py`` (started with ``trio.run_process``, reaped before each test ends).
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import gc
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import checkout_env, close_ports

import actors._memfd
from actors import ArrayBuffer, DataCloneError, MessageChannel, structured_clone
from actors._buffers import SHARED_MEMORY_THRESHOLD
from actors._memfd import MemfdMapping
from actors._wire import shm

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="memfds and /proc are Linux's"
)

LARGE = SHARED_MEMORY_THRESHOLD
PEER = Path(__file__).with_name("_shm_peer.py")


def _pattern(n: int) -> bytes:
    """``n`` bytes that are not all alike (so a misplaced byte shows)."""
    return (b"abcdefghijklmnopqrstuvwxyz0123456789" * (n // 36 + 1))[:n]


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _storage(buf: ArrayBuffer) -> list[object]:
    """The storage objects a buffer holds (found through the garbage collector's view)."""
    return [ref for ref in gc.get_referents(buf) if type(ref) in (bytearray, MemfdMapping)]


def _mapping(buf: ArrayBuffer) -> MemfdMapping:
    [storage] = _storage(buf)
    assert isinstance(storage, MemfdMapping)
    return storage


def _transferred(buf: ArrayBuffer) -> ArrayBuffer:
    return structured_clone(buf, transfer=[buf])


@pytest.fixture(params=["small", "large"])
def size(request: pytest.FixtureRequest) -> int:
    """A buffer size on each side of the threshold (the large one not a multiple of a page)."""
    return 5 if request.param == "small" else LARGE + 5


# -- where the bytes live ----------------------------------------------------------------------


@pytest.mark.parametrize("source", [int, bytes], ids=["length", "bytes"])
def test_storage_is_a_memfd_from_the_threshold_up(source: type) -> None:
    """Below SHARED_MEMORY_THRESHOLD bytes a buffer holds a bytearray; from it up, a memfd."""
    below = ArrayBuffer(source(LARGE - 1))
    at = ArrayBuffer(source(LARGE))
    assert [type(s) for s in _storage(below)] == [bytearray]
    assert [type(s) for s in _storage(at)] == [MemfdMapping]
    assert os.readlink(f"/proc/self/fd/{_mapping(at).fd}").startswith("/memfd:")
    assert at.byte_length == LARGE


def test_the_threshold_is_one_mebibyte() -> None:
    """The threshold is 1 MiB (the docs and SHARED_MEMORY_THRESHOLD's docstring say why)."""
    assert SHARED_MEMORY_THRESHOLD == 1 << 20


@pytest.mark.parametrize("failure", ["no memfd_create", "EMFILE"])
def test_without_memfds_a_large_buffer_is_a_bytearray(
    monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """Where no memfd can be made, a large buffer keeps its bytes in a bytearray, and works."""

    def out_of_fds(name: str, flags: int) -> int:
        raise OSError(24, "Too many open files")

    create = None if failure == "no memfd_create" else out_of_fds
    monkeypatch.setattr(actors._memfd, "_memfd_create", create)
    data = _pattern(LARGE)
    for buf in (ArrayBuffer(LARGE), ArrayBuffer(data), ArrayBuffer(data).slice()):
        assert [type(s) for s in _storage(buf)] == [bytearray]
    buf = ArrayBuffer(data)
    assert bytes(_transferred(buf)) == data
    assert shm.export(ArrayBuffer(data)) is None


def test_a_memfd_buffer_holds_two_fds_until_it_is_collected() -> None:
    """Its memfd and mmap's duplicate of it: both are closed when the buffer is collected."""
    before = _fd_count()
    buf = ArrayBuffer(LARGE)
    assert _fd_count() == before + 2
    del buf
    assert _fd_count() == before


def test_a_transfer_moves_the_fds_and_a_clone_makes_its_own() -> None:
    """A transfer hands the same memfd over (no new fd); a clone is a new memfd."""
    buf = ArrayBuffer(_pattern(LARGE))
    fd = _mapping(buf).fd
    before = _fd_count()
    moved = _transferred(buf)
    assert _fd_count() == before
    assert _mapping(moved).fd == fd
    clone = structured_clone(moved)
    assert _fd_count() == before + 2
    assert _mapping(clone).fd != fd
    del moved, clone
    assert _fd_count() == before - 2


# -- construction and access, small and large ------------------------------------------------


@pytest.mark.parametrize(
    "wrap",
    [bytes, bytearray, memoryview, lambda b: array.array("I", b[: len(b) // 4 * 4])],
    ids=["bytes", "bytearray", "view", "array"],
)
def test_a_buffer_copies_any_bytes_like_source(size: int, wrap: Any) -> None:
    """ArrayBuffer(bytes-like) holds a copy of the source's bytes, whatever their type."""
    source = wrap(_pattern(size))
    buf = ArrayBuffer(source)
    assert bytes(buf) == bytes(memoryview(source))
    assert buf.byte_length == memoryview(source).nbytes


def test_a_non_contiguous_source_is_copied_too(size: int) -> None:
    """A strided memoryview (every other byte) is copied in order."""
    source = memoryview(_pattern(2 * size))[::2]
    buf = ArrayBuffer(source)
    assert bytes(buf) == source.tobytes()
    assert len(buf) == size


def test_a_buffer_does_not_see_later_changes_to_its_source(size: int) -> None:
    """ArrayBuffer(bytearray) copies: changing the bytearray later does not change the buffer."""
    source = bytearray(_pattern(size))
    buf = ArrayBuffer(source)
    source[0] = ord("X")
    assert bytes(buf) == _pattern(size)


def test_a_buffer_of_length_n_is_n_zero_bytes(size: int) -> None:
    """ArrayBuffer(n) is n zero bytes."""
    buf = ArrayBuffer(size)
    assert bytes(buf) == bytes(size)
    assert buf.byte_length == size == len(buf)
    assert not buf.detached
    assert repr(buf) == f"<ArrayBuffer byte_length={size}>"


def test_view_is_a_writable_memoryview_of_the_storage(size: int) -> None:
    """view() is a writable memoryview: writes through it show in the buffer."""
    buf = ArrayBuffer(size)
    with buf.view() as view:
        assert type(view) is memoryview
        assert not view.readonly
        assert len(view) == size
        view[1] = 7
        view[-1] = 9
    assert bytes(buf) == b"\x00\x07" + bytes(size - 3) + b"\x09"


def test_bytes_is_a_copy(size: int) -> None:
    """bytes(buf) is a snapshot: later writes do not change it."""
    buf = ArrayBuffer(_pattern(size))
    snapshot = bytes(buf)
    with buf.view() as view:
        view[0] = ord("X")
    assert snapshot == _pattern(size)
    assert bytes(buf) == b"X" + _pattern(size)[1:]


@pytest.mark.parametrize(
    ("start", "end"), [(1, 3), (0, None), (-2, None), (3, 1), (2, 10**9), (1, -1), (-(10**9), 2)]
)
def test_slice_copies_a_range_with_python_slice_rules(
    size: int, start: int, end: int | None
) -> None:
    """slice(start, end) is a new buffer with a copy of [start:end] (Python slice rules)."""
    buf = ArrayBuffer(_pattern(size))
    part = buf.slice(start, end)
    assert type(part) is ArrayBuffer
    assert part is not buf
    assert bytes(part) == _pattern(size)[start:end]


def test_a_slice_is_in_shared_memory_only_if_it_is_large() -> None:
    """A slice of a large buffer is a memfd if it is large itself, a bytearray otherwise."""
    buf = ArrayBuffer(_pattern(2 * LARGE))
    assert [type(s) for s in _storage(buf.slice(0, LARGE))] == [MemfdMapping]
    assert [type(s) for s in _storage(buf.slice(1, LARGE))] == [bytearray]
    assert bytes(buf.slice(1, LARGE)) == _pattern(2 * LARGE)[1:LARGE]


def test_slice_defaults_to_the_whole_buffer_and_is_independent(size: int) -> None:
    """slice() copies everything, and writing to the slice leaves the buffer alone."""
    buf = ArrayBuffer(_pattern(size))
    part = buf.slice()
    with part.view() as view:
        view[0] = ord("X")
    assert bytes(buf) == _pattern(size)
    assert bytes(part) == b"X" + _pattern(size)[1:]


# -- transfer, small and large -------------------------------------------------------------


def test_transfer_detaches_the_sender_and_the_receiver_gets_the_bytes(size: int) -> None:
    """Rule 27: the sender has byte_length 0 and detached True; the receiver, a new buffer."""
    buf = ArrayBuffer(_pattern(size))
    received = _transferred(buf)
    assert buf.byte_length == 0 == len(buf)
    assert buf.detached
    assert repr(buf) == "<ArrayBuffer detached>"
    assert received is not buf
    assert bytes(received) == _pattern(size)
    assert not received.detached


@pytest.mark.parametrize(
    "read",
    [bytes, ArrayBuffer.view, ArrayBuffer.slice, lambda buf: buf.slice(0, 1)],
    ids=["bytes", "view", "slice", "slice-range"],
)
def test_a_detached_buffer_cannot_be_read(size: int, read: Any) -> None:
    """Rule 27: bytes(), view() and slice() of a detached buffer raise ValueError."""
    buf = ArrayBuffer(size)
    _transferred(buf)
    with pytest.raises(ValueError, match="detached"):
        read(buf)


def test_transfer_moves_the_storage_without_copying(size: int) -> None:
    """A transfer hands the very same storage object to the receiver; no bytes are copied."""
    buf = ArrayBuffer(_pattern(size))
    [storage] = _storage(buf)
    received = _transferred(buf)
    assert _storage(buf) == []
    assert _storage(received) == [storage]


async def test_transfer_through_a_port_moves_the_storage_too(size: int) -> None:
    """post_message with transfer moves the same storage into the received buffer."""
    channel, buf = MessageChannel(), ArrayBuffer(_pattern(size))
    [storage] = _storage(buf)
    channel.port1.post_message(buf, transfer=[buf])
    received = (await channel.port2.receive()).data
    assert _storage(received) == [storage]
    assert bytes(received) == _pattern(size)
    close_ports(channel)


def test_a_detached_buffer_cannot_be_transferred_or_cloned(size: int) -> None:
    """Rule 25: a detached buffer in a transfer list, or in a message, raises DataCloneError."""
    buf = ArrayBuffer(size)
    _transferred(buf)
    with pytest.raises(DataCloneError) as info:
        structured_clone(None, transfer=[buf])
    assert info.value.path == "transfer[0]"
    with pytest.raises(DataCloneError) as info:
        structured_clone({"buf": buf})
    assert info.value.path == "message['buf']"


def test_a_buffer_with_a_live_view_cannot_be_transferred(size: int) -> None:
    """A buffer with a live memoryview raises DataCloneError and is not detached."""
    buf = ArrayBuffer(_pattern(size))
    view = buf.view()
    with pytest.raises(DataCloneError, match="live memoryview") as info:
        structured_clone(buf, transfer=[buf])
    assert info.value.path == "transfer[0]"
    assert not buf.detached
    assert bytes(view) == _pattern(size)
    view.release()
    assert bytes(_transferred(buf)) == _pattern(size)


@pytest.mark.parametrize(
    "derive",
    [
        lambda v: v[1:3],
        lambda v: v[::2],
        lambda v: v.cast("B", (2, len(v) // 2)),
        memoryview,
        lambda v: v.toreadonly(),
    ],
    ids=["slice", "strided", "cast", "view-of-view", "readonly"],
)
def test_a_view_derived_from_a_view_blocks_the_transfer(size: int, derive: Any) -> None:
    """Slices, casts and views of a view hold the buffer even once the view is released."""
    buf = ArrayBuffer(size + size % 2)
    view = buf.view()
    derived = derive(view)
    view.release()
    with pytest.raises(DataCloneError):
        structured_clone(None, transfer=[buf])
    derived.release()
    structured_clone(None, transfer=[buf])
    assert buf.detached


def test_the_live_view_check_changes_nothing() -> None:
    """The check on a memfd (mmap.resize(-1)) leaves its length, bytes and fd as they were."""
    buf = ArrayBuffer(_pattern(LARGE + 5))
    mapping = _mapping(buf)
    fd, before = mapping.fd, os.fstat(mapping.fd).st_size
    assert not mapping.exported()
    with buf.view():
        assert mapping.exported()
        assert mapping.exported()  # asking twice does not change the answer
    assert not mapping.exported()
    assert (mapping.fd, os.fstat(fd).st_size, len(buf)) == (fd, before, LARGE + 5)
    assert bytes(buf) == _pattern(LARGE + 5)
    with pytest.raises(ValueError, match="new size out of range"):
        mapping.resize(-1)  # what exported() relies on: no view, so this is the refusal
    with buf.view(), pytest.raises(BufferError):
        mapping.resize(-1)  # and with one, BufferError comes first


def test_a_live_view_on_one_buffer_leaves_other_entries_attached() -> None:
    """Rule 28 (D3): a refused viewed buffer leaves other listed buffers attached."""
    small, large, viewed = ArrayBuffer(1), ArrayBuffer(LARGE), ArrayBuffer(LARGE)
    with viewed.view(), pytest.raises(DataCloneError):
        structured_clone([small, large, viewed], transfer=[small, large, viewed])
    assert not any(buf.detached for buf in (small, large, viewed))


def test_a_view_does_not_block_a_plain_copy(size: int) -> None:
    """Posting (not transferring) a buffer with a live view copies it fine."""
    buf = ArrayBuffer(_pattern(size))
    with buf.view():
        clone = structured_clone(buf)
    assert bytes(clone) == _pattern(size)
    assert not buf.detached


async def test_posting_without_transfer_copies_the_buffer(size: int) -> None:
    """A buffer posted but not listed arrives as an independent copy; the sender keeps it."""
    channel, buf = MessageChannel(), ArrayBuffer(_pattern(size))
    channel.port1.post_message(buf)
    received = (await channel.port2.receive()).data
    assert not buf.detached
    assert type(_storage(received)[0]) is type(_storage(buf)[0])
    with received.view() as view:
        view[0] = ord("X")
    assert bytes(buf) == _pattern(size)
    assert _storage(received)[0] is not _storage(buf)[0]
    close_ports(channel)


# -- export and adopt in one process ------------------------------------------------------------


def test_export_seals_the_memfd_and_detaches_the_buffer() -> None:
    """export() seals against shrinking and growing, detaches, and close() frees the fds."""
    before = _fd_count()
    buf = ArrayBuffer(_pattern(LARGE))
    exported = shm.export(buf)
    assert exported is not None
    assert buf.detached
    assert exported.length == LARGE
    seals = fcntl.fcntl(exported.fd, fcntl.F_GET_SEALS)
    assert seals & (fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW) == shm.SEALS
    with pytest.raises(PermissionError):
        os.ftruncate(exported.fd, 1)
    exported.close()
    exported.close()
    assert exported.fd == -1
    assert _fd_count() == before


def test_export_of_a_small_buffer_is_none_and_leaves_it_alone() -> None:
    """A buffer whose bytes are not in a memfd is not exported: the caller sends its bytes."""
    buf = ArrayBuffer(b"abc")
    assert shm.export(buf) is None
    assert bytes(buf) == b"abc"


def test_export_refuses_a_detached_buffer_or_one_with_a_live_view() -> None:
    """export() raises ValueError for a detached buffer, BufferError while a view is alive."""
    buf = ArrayBuffer(LARGE)
    with buf.view(), pytest.raises(BufferError):
        shm.export(buf)
    assert not buf.detached
    small = ArrayBuffer(1)
    for detached in (buf, small):
        _transferred(detached)
        with pytest.raises(ValueError, match="detached"):
            shm.export(detached)


def test_an_exported_buffer_dropped_unclosed_closes_its_fds() -> None:
    """An ExportedBuffer that is collected without close() still closes its mapping and fd."""
    before = _fd_count()
    shm.export(ArrayBuffer(LARGE))
    assert _fd_count() == before


def test_an_adopted_buffer_is_the_same_memory() -> None:
    """adopt() maps the memfd: the bytes are there, and writes show through the other fd."""
    buf = ArrayBuffer(_pattern(LARGE))
    with shm.export(buf) as exported:  # type: ignore[union-attr]
        adopted = shm.adopt(os.dup(exported.fd), exported.length)
        assert bytes(adopted) == _pattern(LARGE)
        with adopted.view() as view:
            view[0] = ord("X")
        assert os.pread(exported.fd, 2, 0) == b"Xb"
    assert bytes(adopted) == b"X" + _pattern(LARGE)[1:]
    again = shm.export(adopted)  # an adopted buffer can be sent on (its seals are set)
    assert again is not None
    again.close()


def test_the_seal_values_are_linux_values() -> None:
    """shm spells out Linux's fcntl constants; they match the fcntl module's."""
    assert shm._F_ADD_SEALS == fcntl.F_ADD_SEALS
    assert shm._F_GET_SEALS == fcntl.F_GET_SEALS
    assert shm._F_SEAL_SHRINK == fcntl.F_SEAL_SHRINK
    assert shm._F_SEAL_GROW == fcntl.F_SEAL_GROW
    assert shm._F_SEAL_WRITE == fcntl.F_SEAL_WRITE


# -- hostile fds: adopt ---------------------------------------------------------------------------


def _memfd(size: int, seals: int = 0) -> int:
    fd = os.memfd_create("test", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if seals:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd


@contextlib.contextmanager
def _no_fd_left() -> Iterator[None]:
    before = _fd_count()
    yield
    assert _fd_count() == before


SEALED = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW


@pytest.mark.parametrize(
    ("make", "length", "message"),
    [
        (lambda: os.open(__file__, os.O_RDONLY | os.O_CLOEXEC), 10, "no seals|not sealed"),
        (lambda: _memfd(LARGE), LARGE, "not sealed"),
        (lambda: _memfd(LARGE, fcntl.F_SEAL_SHRINK), LARGE, "not sealed"),
        (lambda: _memfd(LARGE, SEALED | fcntl.F_SEAL_WRITE), LARGE, "against writing"),
        (lambda: _memfd(1, SEALED), 64 << 20, "holds 1 bytes, fewer than the 67108864"),
        (lambda: _memfd(LARGE, SEALED), 0, "positive"),
        (lambda: _memfd(LARGE, SEALED), -1, "positive"),
    ],
    ids=["file", "unsealed", "shrink-only", "write-sealed", "too-small", "zero", "negative"],
)
def test_adopt_refuses_and_closes_a_bad_fd(make: Any, length: int, message: str) -> None:
    """adopt() raises BadFdError for anything but a sealed memfd of the length, and closes it."""
    with _no_fd_left():
        fd = make()
        with pytest.raises(shm.BadFdError, match=message):
            shm.adopt(fd, length)


@pytest.mark.parametrize("kind", ["pipe", "socket"])
def test_adopt_refuses_and_closes_a_pipe_or_socket(kind: str) -> None:
    """A pipe (or socket) fd is refused, and closed: its other end sees that nobody reads."""
    if kind == "pipe":
        fd, writer = os.pipe()
    else:
        a, b = socket.socketpair()
        fd, writer = a.detach(), b.detach()
    with pytest.raises(shm.BadFdError, match=f"is a {kind}"):
        shm.adopt(fd, LARGE)
    with pytest.raises(BrokenPipeError):
        os.write(writer, b"x")
    os.close(writer)


def test_adopt_of_an_fd_that_is_not_open() -> None:
    """An fd number that is not open is refused with BadFdError."""
    fd = _memfd(1)
    os.close(fd)
    with pytest.raises(shm.BadFdError, match="not an open file"):
        shm.adopt(fd, 1)


# -- frames --------------------------------------------------------------------------------


@asynccontextmanager
async def _socketpair() -> AsyncIterator[tuple[socket.socket, trio.socket.SocketType]]:
    """A raw (blocking, stdlib) end that plays the peer, and the trio end under test."""
    raw, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with raw, trio.socket.from_stdlib_socket(other) as ours:
        yield raw, ours


def _rights(fds: list[int]) -> list[tuple[int, int, bytes]]:
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]


def _header(size: int, count: int) -> bytes:
    return struct.pack("<QI", size, count)


async def test_a_frame_carries_the_fd_and_not_the_bytes() -> None:
    """A 4 MiB buffer crosses a socket as a 12-byte header, the frame's payload and one fd."""
    async with _socketpair() as (raw, ours):
        buf = ArrayBuffer(_pattern(4 << 20))
        shell = _transferred(buf)  # what a transport does: the message holds the shell
        exported = shm.export(shell)
        assert exported is not None
        with exported:
            sent = await shm.send_frame(ours, b"buffer 0", [exported.fd])
        assert sent == 12 + len(b"buffer 0")
        assert buf.detached
        assert shell.detached
        data, ancillary, _, _ = raw.recvmsg(1 << 20, socket.CMSG_SPACE(8))
        assert data == _header(8, 1) + b"buffer 0"
        [(_, _, fd_bytes)] = ancillary
        [fd] = array.array("i", fd_bytes)
        with pytest.raises(BlockingIOError):
            raw.recv(1, socket.MSG_DONTWAIT)  # nothing else was sent
        received = shm.adopt(fd, exported.length)
        assert bytes(received) == _pattern(4 << 20)


async def test_a_frame_round_trip_with_fds() -> None:
    """receive_frame returns send_frame's payload and fds that open the same files."""
    a, b = trio.socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        fds = [_memfd(10), _memfd(20)]
        await shm.send_frame(a, memoryview(b"payload"), fds)
        await shm.send_frame(a, b"")
        payload, got = await shm.receive_frame(b)
        assert payload == bytearray(b"payload")
        assert [os.fstat(fd).st_size for fd in got] == [10, 20]
        assert all(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC for fd in got)
        assert await shm.receive_frame(b) == (bytearray(), [])
        shm.close_fds(got + fds)


async def test_a_header_may_come_in_pieces_with_fds_on_each() -> None:
    """fds on every piece of a header add up: they are the frame's fds."""
    async with _socketpair() as (raw, ours):
        header = _header(2, 3)
        fd = _memfd(1)
        raw.sendmsg([header[:4]], _rights([fd, fd]))
        raw.sendmsg([header[4:] + b"ok"], _rights([fd]))
        payload, got = await shm.receive_frame(ours, max_fds=4)
        assert (payload, len(got)) == (bytearray(b"ok"), 3)
        shm.close_fds([*got, fd])


async def test_a_frame_may_carry_the_most_fds_the_kernel_allows() -> None:
    """MAX_FDS (253, the kernel's SCM_MAX_FD) fds go in one frame; one more is refused."""
    with _no_fd_left():
        a, b = trio.socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with a, b:
            reader, writer = os.pipe()
            fds = [os.dup(reader) for _ in range(shm.MAX_FDS)]
            with pytest.raises(ValueError, match="at most 253"):
                await shm.send_frame(a, b"refused", [*fds, reader])
            await shm.send_frame(a, b"x", fds)
            payload, got = await shm.receive_frame(b)
            assert payload == bytearray(b"x")  # the refused frame sent nothing
            assert len(got) == shm.MAX_FDS
            shm.close_fds([*got, *fds, reader, writer])


async def test_receive_frame_takes_at_most_max_fds_fds() -> None:
    """max_fds runs from 0 to MAX_FDS."""
    async with _socketpair() as (_, ours):
        with pytest.raises(ValueError, match="max_fds"):
            await shm.receive_frame(ours, max_fds=shm.MAX_FDS + 1)
        with pytest.raises(ValueError, match="max_fds"):
            await shm.receive_frame(ours, max_fds=-1)


async def test_the_end_of_the_socket_between_frames_is_end_of_channel() -> None:
    """A peer that closes between frames ends receive_frame with trio.EndOfChannel."""
    async with _socketpair() as (raw, ours):
        raw.close()
        with pytest.raises(trio.EndOfChannel):
            await shm.receive_frame(ours)


def _hostile_frames() -> list[Any]:
    """(id, max_fds, what the peer sends as [(bytes, fd count)], close after, error)."""
    return [
        ("ctrunc", 2, [(_header(0, 8), 8)], False, "MSG_CTRUNC"),
        ("no-room", 0, [(_header(0, 1), 1)], False, "MSG_CTRUNC"),
        ("over-max", 3, [(_header(0, 4), 4)], False, "4 fds, over 3"),
        ("more-than-announced", 4, [(_header(0, 1), 2)], False, "announced 1 fds and came with 2"),
        ("fewer-than-announced", 4, [(_header(0, 2), 1)], False, "announced 2 fds and came with 1"),
        ("unannounced", 4, [(_header(0, 0), 1)], False, "announced 0 fds and came with 1"),
        ("too-large", 4, [(_header(1 << 40, 1), 1)], False, "over 1073741824"),
        ("over-max-split", 4, [(_header(0, 5)[:4], 3), (_header(0, 5)[4:], 2)], False, "5 fds"),
        ("eof-in-header", 4, [(_header(5, 1)[:5], 1)], True, "mid-frame"),
        ("eof-in-payload", 4, [(_header(5, 1) + b"ab", 1)], True, "mid-frame"),
    ]


@pytest.mark.parametrize(
    ("max_fds", "sends", "close", "error"),
    [case[1:] for case in _hostile_frames()],
    ids=[case[0] for case in _hostile_frames()],
)
async def test_receive_frame_refuses_a_bad_frame_and_closes_its_fds(
    max_fds: int, sends: list[tuple[bytes, int]], close: bool, error: str
) -> None:
    """Every fd of a refused frame is closed: nobody holds the pipe's read end afterwards."""
    with _no_fd_left():
        reader, writer = os.pipe()
        async with _socketpair() as (raw, ours):
            for data, count in sends:
                raw.sendmsg([data], _rights([reader] * count))
            os.close(reader)  # from here on, the frame holds the only read ends
            if close:
                raw.close()
            expected = trio.BrokenResourceError if close else shm.BadFrameError
            with pytest.raises(expected, match=error):
                await shm.receive_frame(ours, max_fds=max_fds)
        with pytest.raises(BrokenPipeError):
            os.write(writer, b"x")
        os.close(writer)


async def test_a_receive_cancelled_mid_frame_closes_the_fds_it_took() -> None:
    """Cancelled while it waits for the rest of a payload, receive_frame closes its fds."""
    with _no_fd_left():
        reader, writer = os.pipe()
        async with _socketpair() as (raw, ours):
            raw.sendmsg([_header(10, 1) + b"abc"], _rights([reader]))
            os.close(reader)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(shm.receive_frame, ours)
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
        with pytest.raises(BrokenPipeError):
            os.write(writer, b"x")
        os.close(writer)


async def test_fds_sent_in_the_middle_of_a_payload_are_closed_by_the_kernel() -> None:
    """fds attached to payload bytes are read without room for them: the kernel closes them."""
    reader, writer = os.pipe()
    async with _socketpair() as (raw, ours):
        raw.sendall(_header(4, 0) + b"ab")
        raw.sendmsg([b"cd"], _rights([reader]))
        os.close(reader)
        payload, fds = await shm.receive_frame(ours)
        assert (payload, fds) == (bytearray(b"abcd"), [])
    with pytest.raises(BrokenPipeError):
        os.write(writer, b"x")
    os.close(writer)


async def test_send_frame_to_a_closed_peer_is_broken_resource() -> None:
    """send_frame raises trio.BrokenResourceError when the peer has closed its end."""
    async with _socketpair() as (raw, ours):
        raw.close()
        with pytest.raises(trio.BrokenResourceError):
            await shm.send_frame(ours, b"x" * (1 << 20))


# -- two processes -----------------------------------------------------------------------


@dataclass
class Peer:
    """A child process running _shm_peer.py, and our end of its socket."""

    sock: trio.socket.SocketType
    process: trio.Process

    async def send(self, request: dict[str, Any], fds: list[int] | None = None) -> int:
        return await shm.send_frame(self.sock, json.dumps(request).encode(), fds or [])

    async def receive(self) -> tuple[dict[str, Any], list[int]]:
        payload, fds = await shm.receive_frame(self.sock)
        return json.loads(payload), fds

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.send(request)
        answer, fds = await self.receive()
        assert fds == []
        return answer

    async def send_buffer(self, request: dict[str, Any], buf: ArrayBuffer) -> int:
        """Export buf (detaching it), send it with request, and close our mapping and fd."""
        exported = shm.export(buf)
        assert exported is not None
        with exported:
            return await self.send({**request, "length": exported.length}, [exported.fd])


@asynccontextmanager
async def open_peer(*, check: bool = True) -> AsyncIterator[Peer]:
    """Start the child; on the way out, close the socket and wait until the child is reaped.

    With ``check``, a child that exits with an error fails the test."""
    parent, child = trio.socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    async with trio.open_nursery() as nursery:
        with parent:
            with child:
                command = [sys.executable, str(PEER), str(child.fileno())]
                run = partial(
                    trio.run_process,
                    command,
                    stdin=subprocess.DEVNULL,  # not run_process's default: a pipe it closes later
                    pass_fds=(child.fileno(),),
                    env=checkout_env(),
                    check=check,
                )
                process = await nursery.start(run)
            yield Peer(parent, process)
    assert process.returncode is not None  # reaped


async def test_a_buffer_goes_to_a_child_process_and_back_without_its_bytes() -> None:
    """Intact both ways, a few dozen bytes on the socket each way, the senders detached; the
    child's write is in the buffer that comes back, and the sender could never see it."""
    data = _pattern(8 << 20)
    async with open_peer() as peer:
        buf = ArrayBuffer(data)
        shell = _transferred(buf)  # what a transport does: the message's buffer is the shell
        sent = await peer.send_buffer({"op": "echo", "write": [0, ord("X")]}, shell)
        assert buf.detached
        assert shell.detached
        with pytest.raises(ValueError, match="detached"):
            bytes(buf)
        answer, fds = await peer.receive()
        assert answer["sha256"] == hashlib.sha256(data).hexdigest()
        assert answer["received"] == sent < 100  # bytes on the socket, parent to child
        back = shm.adopt(fds[0], answer["length"])
        assert bytes(back) == b"X" + data[1:]
    assert peer.process.returncode == 0


async def test_a_bad_fd_from_a_child_is_refused_and_closed() -> None:
    """A child that sends a pipe, or a 1-byte memfd claiming 64 MiB, gets BadFdError here."""
    async with open_peer() as peer:
        before = _fd_count()
        for kind in ("pipe", "small"):
            await peer.send({"op": "bad", "kind": kind, "length": 64 << 20})
            answer, fds = await peer.receive()
            with pytest.raises(shm.BadFdError):
                shm.adopt(fds[0], answer["length"])
        assert _fd_count() == before


async def test_a_child_refuses_a_bad_fd_and_keeps_working() -> None:
    """The child answers an unsealed memfd with an error, then takes a good buffer."""
    async with open_peer() as peer:
        fd = _memfd(LARGE)
        await peer.send({"op": "echo", "length": LARGE}, [fd])
        os.close(fd)
        answer, _ = await peer.receive()
        assert "not sealed" in answer["error"]
        await peer.send_buffer({"op": "echo"}, ArrayBuffer(LARGE))
        answer, fds = await peer.receive()
        assert answer["sha256"] == hashlib.sha256(bytes(LARGE)).hexdigest()
        shm.close_fds(fds)
    assert peer.process.returncode == 0


async def test_no_fd_leaks_after_a_thousand_transfers() -> None:
    """1,000 round trips (2,000 transfers) of one buffer leave both processes with the fds
    they started with; every write of the child is in the buffer (it is one memory all along)."""
    async with open_peer() as peer:
        buf = ArrayBuffer(_pattern(LARGE))
        ours, theirs = _fd_count(), (await peer.ask({"op": "fds"}))["fds"]
        for i in range(1000):
            await peer.send_buffer({"op": "echo", "write": [i, ord("#")], "digest": False}, buf)
            answer, fds = await peer.receive()
            buf = shm.adopt(fds[0], answer["length"])
        assert _fd_count() == ours
        assert (await peer.ask({"op": "fds"}))["fds"] == theirs
        assert bytes(buf) == b"#" * 1000 + _pattern(LARGE)[1000:]


def _holders(inode: tuple[int, int]) -> set[int]:
    """The pids of every process we can see that has the file open or mapped."""
    number = str(inode[1])
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry.name}/fd"):
                with contextlib.suppress(OSError):
                    st = os.stat(f"/proc/{entry.name}/fd/{fd}")
                    if (st.st_dev, st.st_ino) == inode:
                        found.add(int(entry.name))
            with open(f"/proc/{entry.name}/maps") as maps:
                for line in maps:
                    fields = line.split()
                    if len(fields) >= 6 and fields[4] == number and "memfd:" in line:
                        found.add(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


async def test_a_killed_child_leaves_nothing_behind() -> None:
    """SIGKILL a child that holds a buffer: afterwards no process has the memfd open or
    mapped (so the kernel has freed it), our fds are as before, and /dev/shm is unchanged."""
    shm_names = set(os.listdir("/dev/shm"))
    before = _fd_count()
    async with open_peer(check=False) as peer:
        during = _fd_count()
        buf = ArrayBuffer(_pattern(8 << 20))
        st = os.fstat(_mapping(buf).fd)
        inode = (st.st_dev, st.st_ino)
        assert _holders(inode) == {os.getpid()}
        await peer.send_buffer({"op": "hold"}, buf)
        assert await peer.receive() == ({"held": 1}, [])
        assert _holders(inode) == {peer.process.pid}
        assert _fd_count() == during
        peer.process.kill()
        await peer.process.wait()
        assert peer.process.returncode == -9
        assert _holders(inode) == set()
    assert _fd_count() == before
    assert set(os.listdir("/dev/shm")) == shm_names


def test_the_in_process_core_never_imports_the_wire() -> None:
    """Importing actors, and using large buffers, supervisors, asks and services in one
    process, loads nothing of the transport layers (actors._wire, actors._process)."""
    code = (
        "import sys, trio, actors\n"
        "buf = actors.ArrayBuffer(1 << 21)\n"
        "actors.structured_clone(buf, transfer=[buf])\n"
        "async def echo(port):\n"
        "    async for event in port:\n"
        "        event.reply(event.data)\n"
        "async def main():\n"
        "    async with actors.open_supervisor() as sup:\n"
        "        channel = actors.MessageChannel()\n"
        "        sup.spawn(echo, channel.port2, restart=actors.Restart.TRANSIENT)\n"
        "        assert await actors.ask(channel.port1, 1) == 1\n"
        "        async with actors.serve('n') as incoming:\n"
        "            client = await actors.connect('n')\n"
        "            server = await incoming.__anext__()\n"
        "            client.post_message(2)\n"
        "            assert (await server.receive()).data == 2\n"
        "            client.close(); server.close()\n"
        "        channel.port1.close()\n"
        "trio.run(main)\n"
        "layers = ('actors._wire', 'actors._process')\n"
        "print(sorted(m for m in sys.modules if m.startswith(layers)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=checkout_env()
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
