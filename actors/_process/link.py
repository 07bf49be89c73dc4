"""A link to a neighbouring node over a stream socket (a socketpair to a child process).

Frames go out length-prefixed. A frame is written at once if the socket takes it and nothing
is waiting to go before it (no task switch on the common path); otherwise it waits in a buffer
that a writer task sends in batches, so a link that falls behind sends many frames per system
call. A reader task splits what arrives into frames for the node. A peer that breaks the
framing (a length over the limit, a frame that is not a frame) is cut off with one log line,
and the node loses it as if its process had died.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import Final, final

import trio

from .._log import logger
from .._wire.frames import FrameError, Reader, framed
from .._wire.node import Node

__all__ = ["SocketLink"]

_CHUNK: Final = 256 * 1024


@final
class SocketLink:
    """One node's side of a stream socket to a neighbouring node."""

    __slots__ = (
        "_closed",
        "_drained",
        "_out",
        "_raw",
        "_sock",
        "_wake",
        "_writing",
        "neighbour",
        "node",
    )

    def __init__(self, node: Node, neighbour: int, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.node = node
        self.neighbour = neighbour
        self._raw = sock  # for a write that does not wait (from sync code)
        self._sock = trio.socket.from_stdlib_socket(sock)
        self._out: list[bytes] = []  # frames waiting for the writer, in order
        self._writing = False  # the writer has frames in hand: nothing may overtake them
        self._wake = trio.Event()
        self._drained: trio.Event | None = None  # set when nothing waits to be written
        self._closed = False

    def send(self, frame: bytes) -> None:
        if self._closed:
            return
        data = framed(frame)
        if not self._out and not self._writing:
            try:
                sent = self._raw.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:  # the other side is gone: the reader finds out and says so
                return
            if sent == len(data):
                return
            data = data[sent:]
        self._out.append(data)
        self._wake.set()

    async def flush(self) -> None:
        """Wait until everything sent so far has been written to the socket."""
        if (self._out or self._writing) and not self._closed:
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
            self._raw.close()
            self.node.link_lost(self.neighbour)

    async def _read_all(self) -> None:
        reader = Reader()
        node, neighbour = self.node, self.neighbour
        raw = self._raw
        # Wait, then read (no failed read before each wait), into one buffer (a fresh 256 KiB
        # per read costs an mmap, an mremap and a munmap).
        view = memoryview(bytearray(_CHUNK))
        while not self._closed:
            try:
                await trio.lowlevel.wait_readable(raw)
                data = view[: raw.recv_into(view)]
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.EBADF):
                    logger(node=node.name).warning("link_broken", reason=repr(exc))
                return
            if not data:  # the other side closed (or its process died)
                if reader.pending:
                    logger(node=node.name, neighbour=neighbour).warning(
                        "link_broken",
                        reason=f"the peer closed within a frame ({reader.pending} bytes)",
                    )
                return
            try:
                for frame in reader.feed(data):
                    node.receive(frame, neighbour)
            except FrameError as exc:
                logger(node=node.name, neighbour=neighbour).warning(
                    "link_broken", reason=f"the peer broke the protocol: {exc}"
                )
                return

    async def _write_all(self) -> None:
        sock = self._sock
        while True:
            while not self._out:
                drained, self._drained = self._drained, None
                if drained is not None:
                    drained.set()
                if self._closed:
                    return
                await self._wake.wait()
                self._wake = trio.Event()
            batch, self._out = self._out, []
            self._writing = True
            try:
                data = b"".join(batch)
                view = memoryview(data)
                while view:
                    sent = await sock.send(view)
                    view = view[sent:]
            except OSError:
                self._closed = True
                if self._drained is not None:
                    self._drained.set()
                return
            finally:
                self._writing = False
