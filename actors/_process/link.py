"""A link to a neighbouring node over a stream socket (a socketpair to a child process).

Frames go out with their header (`frames.framed`: length and fd count). A frame is written at
once if the socket takes it and nothing is waiting to go before it: no task switch on the
common path (a reply leaves as soon as it is sent). The first such write wakes the writer
task, whose run starts the count again; after `IN_A_ROW` writes before it has run (a burst),
the frames sent wait in a buffer that it sends in one system call, as do frames the socket has
no room for: a link that falls behind sends many frames per system call. So the first
`IN_A_ROW` frames sent after the sending task last waited (the writer ran meanwhile) are in
the socket when `post_message` returns: what a process posted just before it died abruptly
has left. A reader task splits what arrives into
frames for the node. A peer that breaks the framing (a length over the limit, a frame that is
not a frame, fds that no frame announces) is cut off with one log line, and the node loses it
as if its process had died.

Fds (`SCM_RIGHTS`) attach to the first byte that the `sendmsg` carrying them writes, and a
`recvmsg` that reads that byte returns them (Linux ends a read after the segment that carried
fds). So a frame with fds always starts a `sendmsg` of its own, with its fds, and frames after
it may follow in the same call: the receiver, reading the frame's first byte, gets its fds;
once it has read a whole number of frames it holds no fd, and while it is inside a frame it
holds exactly the fds that frame announced. Anything else is a peer breaking the protocol.
"""

from __future__ import annotations

import array
import contextlib
import errno
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, final

import trio

from .. import _queue
from .._log import logger
from .._queue import PortCore
from .._wire import frames
from .._wire.fds import Fds, close_fds
from .._wire.frames import MAX_FDS, USER, USERS, FrameError, Reader, framed
from .._wire.home import HomeEnd
from .._wire.node import Node, RemoteEnd

__all__ = ["SocketLink"]

_CHUNK: Final = 256 * 1024
_BATCH_BYTES: Final = 256 * 1024  # a USERS frame is closed once its payloads reach this
LEND: Final = 2
"""Checkpoints the reader task lets pass before it reads again, after a read that woke a
`receive()` or after a `receive()` that read: time for that task to come back and read the
next message itself (a `receive()` blocked at a port whose messages come this way)."""
IN_A_ROW: Final = 16
"""Frames a link writes at once, one system call each, until its writer task has run (it is
woken by the first, and runs once the sending task waits): the frames after those wait for
it, and go in one system call."""
_FD_SIZE: Final = array.array("i").itemsize
_ROOM: Final = socket.CMSG_SPACE(MAX_FDS * _FD_SIZE)
_CMSG_CLOEXEC: Final = int(getattr(socket, "MSG_CMSG_CLOEXEC", 0))
_CTRUNC: Final = int(socket.MSG_CTRUNC)  # an int: `&` on the IntFlag costs microseconds


def _rights(fds: list[int]) -> list[tuple[int, int, bytes]]:
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]


@final
class SocketLink:
    """One node's side of a stream socket to a neighbouring node."""

    __slots__ = (
        "_batch",
        "_closed",
        "_drained",
        "_fds",
        "_held",
        "_helper",
        "_in_a_row",
        "_in_wait",
        "_lend",
        "_out",
        "_over",
        "_parked",
        "_raw",
        "_reader",
        "_robbed",
        "_sock",
        "_view",
        "_wake",
        "_writing",
        "neighbour",
        "node",
        "received",
        "sent",
    )

    def __init__(self, node: Node, neighbour: int, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.node = node
        self.neighbour = neighbour
        self._raw = sock  # for reads, and for a write that does not wait (from sync code)
        # The writer task waits on a duplicate of the socket's fd: a receive() reading the
        # link is woken by `notify_closing` of the reading fd, which must not touch it.
        self._sock = trio.socket.from_stdlib_socket(sock.dup())
        self._out: list[bytes] = []  # frames waiting for the writer, in order
        self._batch: _Batch | None = None  # messages of one channel after `_out`, to go as one
        self._fds: dict[int, list[int]] = {}  # the fds of the frame at that index of _out
        self._writing = False  # the writer has frames in hand: nothing may overtake them
        self._in_a_row = 0  # frames written at once since the writer last ran
        self._wake = trio.Event()
        self._drained: trio.Event | None = None  # set when nothing waits to be written
        self._closed = False
        # Reading: by the reader task, or by a receive() blocked at a port whose messages
        # come this way (`read_for`), never both at once.
        self._reader = Reader()
        self._held: deque[int] = deque()  # fds that came, for the frames they belong to
        # One buffer for every read (a fresh 256 KiB per read costs mmap, mremap, munmap).
        self._view = memoryview(bytearray(_CHUNK))
        self._in_wait = False  # the reader task waits on the socket
        self._helper: trio.lowlevel.Task | None = None  # the receive() reading for us
        self._robbed: trio.lowlevel.Task | None = None  # the helper before it: not again
        self._parked: trio.lowlevel.Task | None = None  # the reader task, while a helper reads
        self._lend = 0  # checkpoints the reader task waits for a helper before it reads
        self._over = False  # a helper found the link over: the reader task ends it
        self.sent = 0
        """Bytes written to the socket so far (headers included)."""
        self.received = 0
        """Bytes read from the socket so far."""

    def send(self, frame: bytes, fds: Fds | None = None) -> None:
        if self._closed:
            if fds:
                fds.close()
            return
        if self._batch is not None:  # it goes before this frame
            self._close_batch()
        mine = fds.take_all() if fds else None
        data = framed(frame, len(mine) if mine else 0)
        if not self._out and not self._writing and self._in_a_row < IN_A_ROW:
            try:
                sent = self._raw.sendmsg([data], _rights(mine)) if mine else self._raw.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                if exc.errno != errno.ETOOMANYREFS:  # the other side is gone: the reader
                    if mine:  # finds out and says so
                        close_fds(mine)
                    return
                sent = 0  # too many fds in flight: the writer tries again
            if sent:
                self.sent += sent
                if mine:  # they went with the first byte
                    close_fds(mine)
                    mine = None
                if sent == len(data):
                    self._in_a_row += 1
                    if self._in_a_row == 1:  # the writer's next run starts the count again
                        self._wake.set()
                    return
                data = data[sent:]
        if mine:
            self._fds[len(self._out)] = mine
        self._out.append(data)
        self._wake.set()

    def send_user(
        self, dst: int, src: int, cid: int, end: int, seq: int, payload: bytes, ask: bool
    ) -> None:
        """A message with no ports and no shared buffers (`Node.send_user`): written at once
        as a USER frame when a frame would be; otherwise it waits with the messages of its
        channel sent right before it, to go in one USERS frame."""
        if self._closed:
            return
        batch = self._batch
        if batch is not None:
            if (
                batch.next == seq
                and batch.cid == cid
                and batch.end == end
                and batch.dst == dst
                and batch.size < _BATCH_BYTES
            ):
                if ask:
                    batch.asks.append(seq - batch.first)
                batch.payloads.append(payload)
                batch.next = seq + 1
                batch.size += len(payload)
                return
            self._close_batch()
        elif not self._out and not self._writing and self._in_a_row < IN_A_ROW:
            self.send(frames.encode(dst, src, USER, cid, end, seq, payload, [], ask))
            return
        self._batch = _Batch(dst, src, cid, end, seq, payload, ask)
        self._wake.set()

    def _close_batch(self) -> None:
        """The open batch goes to the end of `_out`, as one frame."""
        batch = self._batch
        assert batch is not None
        self._batch = None
        dst, src, cid, end, first = batch.dst, batch.src, batch.cid, batch.end, batch.first
        if len(batch.payloads) == 1:
            ask = bool(batch.asks)
            frame = frames.encode(dst, src, USER, cid, end, first, batch.payloads[0], [], ask)
        else:
            frame = frames.encode(dst, src, USERS, cid, end, first, batch.payloads, batch.asks)
        self._out.append(framed(frame))

    async def flush(self) -> None:
        """Wait until everything sent so far has been written to the socket, or the link
        is over (what was not written then never will be)."""
        if (self._out or self._writing or self._batch is not None) and not self._closed:
            if self._drained is None:
                self._drained = trio.Event()
            await self._drained.wait()

    def close(self) -> None:
        """Stop sending and receiving; the node hears of it from `run()`."""
        if not self._closed:
            self._closed = True
            self._wake.set()
            with contextlib.suppress(OSError):
                self._raw.shutdown(socket.SHUT_RDWR)

    async def run(self) -> None:
        """Read and write until the link breaks or is closed; then the node loses the peer."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_all)
                await self._read_all()
                nursery.cancel_scope.cancel()
        finally:
            self._closed = True
            trio.lowlevel.notify_closing(self._raw)  # a receive() waiting on it looks again
            self._raw.close()
            self._sock.close()
            self._out = []
            self._batch = None
            drained, self._drained = self._drained, None
            if drained is not None:  # what waits to be written never will be: flush() ends
                drained.set()
            fds, self._fds = self._fds, {}
            for unsent in fds.values():
                close_fds(unsent)
            self.node.link_lost(self.neighbour)

    async def _read_all(self) -> None:
        try:
            await self._read_frames()
        finally:
            close_fds(self._held)

    async def _read_frames(self) -> None:
        """Wait, then read (no failed read before each wait); or, while a `receive()` reads
        for the run (`read_for`), wait for it to be done."""
        raw = self._raw
        while not self._closed and not self._over:
            if self._helper is not None:  # a receive() reads: wait until it is done
                self._parked = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._unpark)
                continue
            if self._lend:  # a receive() that the last read woke may come back to read
                self._lend -= 1
                await trio.lowlevel.cancel_shielded_checkpoint()
                continue
            self._in_wait = True
            try:
                await trio.lowlevel.wait_readable(raw)
            finally:
                self._in_wait = False
            woken = _queue.woken
            if not self._read_once():
                self._over = True  # no receive() reads it again (the end, logged once)
                return
            if _queue.woken != woken:
                self._lend = LEND

    def _unpark(self, _: object) -> trio.lowlevel.Abort:
        self._parked = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _read_once(self) -> bool:
        """Read what the socket has (it was readable) and hand the frames in it to the
        node; `False` once the link is over (closed by the peer, broken, or cut off)."""
        node, neighbour, reader, held = self.node, self.neighbour, self._reader, self._held
        try:
            size, ancillary, flags, _ = self._raw.recvmsg_into([self._view], _ROOM, _CMSG_CLOEXEC)
        except BlockingIOError:
            return True
        except OSError as exc:
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.EBADF):
                logger(node=node.name).warning("link_broken", reason=repr(exc))
            return False
        data = self._view[:size]
        for level, kind, fd_data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                held.extend(array.array("i", fd_data[: len(fd_data) - len(fd_data) % _FD_SIZE]))
        if not data:  # the other side closed (or its process died)
            if reader.pending:
                logger(node=node.name, neighbour=neighbour).warning(
                    "link_broken",
                    reason=f"the peer closed within a frame ({reader.pending} bytes)",
                )
            return False
        self.received += len(data)
        try:
            if flags & _CTRUNC:
                raise FrameError("fds came that there was no room for (MSG_CTRUNC)")
            for frame, count in reader.feed(data):
                fds = None
                if count:
                    if len(held) < count:
                        raise FrameError(f"a frame announced {count} fds, {len(held)} came")
                    fds = Fds(held.popleft() for _ in range(count))
                node.receive(frame, neighbour, fds)
            if held and _holds_too_many(len(held), reader):
                raise FrameError(f"{len(held)} fds came that no frame announced")
        except FrameError as exc:
            logger(node=node.name, neighbour=neighbour).warning(
                "link_broken", reason=f"the peer broke the protocol: {exc}"
            )
            return False
        return True

    # -- a receive() reading for the run -------------------------------------------------

    def _interrupt(self) -> None:
        """Wake the `receive()` reading this link (it raises `ClosedResourceError` there,
        and looks again at its port); only it waits on the reading fd."""
        trio.lowlevel.notify_closing(self._raw)

    def lendable(self) -> bool:
        """Whether the `receive()` running may read this link now: the reader task does not
        wait on its socket, and no other `receive()` does, or one does that did not take
        this one's place (the last `receive()` to wait reads: it is the one in a
        conversation)."""
        if self._in_wait or self._closed or self._over:
            return False
        return self._helper is None or trio.lowlevel.current_task() is not self._robbed

    async def read_for(self, core: PortCore) -> None:
        """Wait, as a `receive()` blocked at `core`, until the socket can be read (then read
        it, as the reader task would) or `core` wakes it (its scope is cancelled); the
        reader task waits meanwhile. Called only when `lendable()`."""
        task = trio.lowlevel.current_task()
        if self._helper is not None:  # it waits at its port as others do, from now on
            self._robbed = self._helper
            self._interrupt()
        else:
            self._robbed = None
        core.receivers[task] = self._interrupt
        self._helper = task
        readable = False
        try:
            await trio.lowlevel.wait_readable(self._raw)
            readable = True
        except trio.ClosedResourceError:  # woken (`_interrupt`), or the link is going
            pass
        except BaseException:  # cancelled: if it was woken for the head, the next one takes it
            if task not in core.receivers and core.receivers and core.queue and not core.busy:
                core.release()
            raise
        finally:
            core.receivers.pop(task, None)
            if self._helper is task:
                self._helper = None
                self._lend = LEND  # the next receive() of this task may read again
                parked = self._parked
                if parked is not None:
                    self._parked = None
                    trio.lowlevel.reschedule(parked)
        if readable and not self._closed and not self._over and not self._read_once():
            self._over = True  # the reader task ends the link (it is woken above)

    async def _write_all(self) -> None:
        while True:
            if self._batch is not None:
                self._close_batch()
            while not self._out:
                self._in_a_row = 0
                drained, self._drained = self._drained, None
                if drained is not None:
                    drained.set()
                if self._closed:
                    return
                await self._wake.wait()
                self._wake = trio.Event()
                if self._batch is not None:
                    self._close_batch()
            batch, self._out = self._out, []
            fds, self._fds = self._fds, {}
            self._writing = True
            try:
                if not fds:
                    await self._write(b"".join(batch), None)
                else:  # a frame with fds starts a sendmsg of its own
                    starts = sorted(fds)
                    if starts[0]:
                        await self._write(b"".join(batch[: starts[0]]), None)
                    for i, start in enumerate(starts):
                        end = starts[i + 1] if i + 1 < len(starts) else len(batch)
                        await self._write(b"".join(batch[start:end]), fds.pop(start))
            except OSError:
                self._closed = True
                if self._drained is not None:
                    self._drained.set()
                return
            finally:
                self._writing = False
                for unsent in fds.values():
                    close_fds(unsent)

    async def _write(self, data: bytes, fds: list[int] | None) -> None:
        """Write all of `data`, `fds` with its first byte (closed here once sent)."""
        sock = self._sock
        view = memoryview(data)
        try:
            if fds:
                sent = await _sendmsg(sock, view, fds)
                close_fds(fds)
                fds = None
                self.sent += sent
                view = view[sent:]
            while view:
                sent = await sock.send(view)
                self.sent += sent
                view = view[sent:]
        finally:
            if fds:
                close_fds(fds)


async def _sendmsg(sock: trio.socket.SocketType, view: memoryview, fds: list[int]) -> int:
    """`sendmsg` with fds; while the kernel has too many of this user's fds in flight (over
    its `RLIMIT_NOFILE`: `ETOOMANYREFS`), wait for the peer to take some in."""
    delay = 0.001
    while True:
        try:
            return await sock.sendmsg([view], _rights(fds))
        except OSError as exc:
            if exc.errno != errno.ETOOMANYREFS:
                raise
        await trio.sleep(delay)
        delay = min(delay * 2, 0.1)


@final
class _Batch:
    """Messages `first`, `first + 1`, ... of the end `(cid, end)` at node `dst`, waiting to go
    in one USERS frame (`asks`: the offsets of those that ask for a read acknowledgement)."""

    __slots__ = ("asks", "cid", "dst", "end", "first", "next", "payloads", "size", "src")

    def __init__(
        self, dst: int, src: int, cid: int, end: int, seq: int, payload: bytes, ask: bool
    ) -> None:
        self.dst, self.src, self.cid, self.end = dst, src, cid, end
        self.first = seq
        self.next = seq + 1
        self.payloads = [payload]
        self.asks = [0] if ask else []
        self.size = len(payload)


def read_for(core: PortCore) -> Callable[[PortCore], Awaitable[None]] | None:
    """`_queue.READ_FOR`: the `read_for` of the process link that `core`'s messages come by,
    if a `receive()` may read it now."""
    peer = core.peer
    if isinstance(peer, RemoteEnd):
        node, location = peer.node, peer.location
    elif isinstance(peer, PortCore) and isinstance(peer.sink, HomeEnd):
        node, location = peer.sink.node, peer.sink.location
    else:
        return None
    via = None if location == node.name else node.routes.get(location, node.default)
    link = None if via is None else node.links.get(via)
    if isinstance(link, SocketLink) and link.lendable():
        return link.read_for
    return None


_queue.READ_FOR = read_for  # a process that links to another lets receive() read its links


def _holds_too_many(held: int, reader: Reader) -> bool:
    """Whether `held` fds are more than the frame being read can own: between frames, none;
    inside one, exactly as many as it announced (all came with its first byte)."""
    if not reader.pending:
        return True
    announced = reader.announced
    return held > MAX_FDS if announced is None else held != announced
