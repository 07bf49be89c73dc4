"""The frames nodes exchange: their kinds, their envelope, and how they are framed on a stream.

Every frame is a msgpack array `[dst, src, kind, *fields]`: the node it is for, the node that
sent it, and what it says. A node forwards a frame that is not for it without looking further.
On a stream a frame is an 8-byte header, its length and the number of fds that came with it
(each 4 bytes, little-endian), then the frame; the fds ride on the first byte of the header,
or of the frame, whatever the sender wrote them with. The kinds and fields:

- USER `cid, end, seq, payload, descriptors, ask[, buffers]`: a message for the end
  `(cid, end)`; `buffers` are the lengths of its shared buffers, whose fds come with the
  frame (`fds.py` says in which order).
- CLOSE `cid, end, last`: the peer of `(cid, end)` closed after its message `last`.
- MOVED `cid, end, location, forward`: the peer of `(cid, end)` moved to `location`; the node
  `forward` forwards what it sent there before.
- MOVED_ACK `cid, end, last`: for the forward of `(cid, end)`: the peer sent it up to `last`.
- ACK `cid, end, read`: the peer of `(cid, end)` has read up to `read`.
- LOST `cid, end`: the peer of `(cid, end)` is gone, unannounced.
- REHOMED `cid, end, location, after`: the homed peer of `(cid, end)` lives at `location` now;
  send it again what was sent after `after`.
- ROUTES `names`: these nodes are reached through the sender.
- NODE_LOST `names`: these nodes are gone.
- BYE: the sender closes the link on purpose.

A descriptor is how a port travels inside a USER frame (see `node.py`).
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgspec

__all__ = [
    "ACK",
    "BYE",
    "CLOSE",
    "LOST",
    "HEADER",
    "MAX_FDS",
    "MAX_FRAME",
    "MOVED",
    "MOVED_ACK",
    "NODE_LOST",
    "REHOMED",
    "ROUTES",
    "USER",
    "FrameError",
    "Reader",
    "decode",
    "encode",
    "framed",
]

USER: Final = 1
CLOSE: Final = 2
MOVED: Final = 3
MOVED_ACK: Final = 4
ACK: Final = 5
LOST: Final = 6
REHOMED: Final = 7
ROUTES: Final = 8
NODE_LOST: Final = 9
BYE: Final = 10
KINDS: Final = frozenset(range(USER, BYE + 1))

MAX_FRAME: Final = 256 * 1024 * 1024
"""The largest frame a link accepts (256 MiB): a peer that claims more breaks the framing."""

MAX_FDS: Final = 253
"""The most fds that come with one frame (the kernel's `SCM_MAX_FD`, per `sendmsg`)."""

HEADER: Final = struct.Struct("<II")  # the frame's length, the number of its fds
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class FrameError(Exception):
    """Bytes that are not a frame: the peer that sent them breaks the protocol."""


def encode(dst: int, src: int, kind: int, *fields: object) -> bytes:
    """One frame, unframed (for a link that keeps message boundaries)."""
    return _encode((dst, src, kind, *fields))


def framed(frame: bytes, fds: int = 0) -> bytes:
    """`frame` with its header in front, for a stream: `fds` fds go with it."""
    return HEADER.pack(len(frame), fds) + frame


def decode(frame: bytes) -> list[Any]:
    """The fields of a frame: `[dst, src, kind, ...]`, checked only for that much.

    Raises:
        FrameError: not msgpack, or not an array starting with two ints and a known kind.
    """
    try:
        fields = _decode(frame)
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raise FrameError(f"not a frame: {exc}") from None
    if (
        type(fields) is not list
        or len(fields) < 3
        or type(fields[0]) is not int
        or type(fields[1]) is not int
        or fields[2] not in KINDS
    ):
        raise FrameError("not a frame: expected [dst, src, kind, ...]")
    return fields


class Reader:
    """Splits a byte stream into frames: feed it what arrives, get whole frames back, each
    with the number of fds its header announces."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, int]]:
        """The frames completed by `data` (none if it ends mid-frame), with their fd counts.

        Raises:
            FrameError: a frame longer than `MAX_FRAME`, or with more than `MAX_FDS` fds (the
                stream cannot be trusted after).
        """
        buffer = self._buffer
        buffer += data
        frames: list[tuple[bytes, int]] = []
        start = 0
        end = len(buffer)
        size = HEADER.size
        while end - start >= size:
            length, fds = HEADER.unpack_from(buffer, start)
            if length > MAX_FRAME:
                raise FrameError(f"a frame of {length} bytes is over the limit of {MAX_FRAME}")
            if fds > MAX_FDS:
                raise FrameError(f"a frame announces {fds} fds, over the limit of {MAX_FDS}")
            if end - start - size < length:
                break
            frames.append((bytes(buffer[start + size : start + size + length]), fds))
            start += size + length
        if start:
            del buffer[:start]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)

    @property
    def announced(self) -> int | None:
        """How many fds the incomplete frame announces; `None` before its header is in."""
        if len(self._buffer) < HEADER.size:
            return None
        fds: int = HEADER.unpack_from(self._buffer)[1]
        return fds
