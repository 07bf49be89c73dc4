"""The frames nodes exchange: their kinds, their envelope, and how they are framed on a stream.

Every frame is a msgpack array `[dst, src, kind, *fields]`: the node it is for, the node that
sent it, and what it says. A node checks every frame that comes in (`decode`) and passes one
that is not for it on unchanged. On a stream a frame is a 4-byte little-endian length, then
the frame. The kinds and fields:

- USER `cid, end, seq, payload, descriptors, ask`: a message for the end `(cid, end)`; `ask`
  asks for a read acknowledgement (ACK).
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

ROUTES, NODE_LOST and BYE are about the link: a node sends them only to its neighbour. A
descriptor is how a port travels inside a USER frame (`node.py` says what it means):
`[cid, end, location, send, recv, queued, early, closing, cursor, asked]` (the last two may be
left off), with `queued` a list of `[kind, payload, descriptors]` (kind 0 a message, 1 a
messageerror, 2 the close) and `early` a list of `[seq, payload, descriptors, ask]`;
`location`, `closing` and `cursor` may be nil.

`decode` checks all of that: the shape of a frame of each kind and the types of its fields,
the descriptors in it too (nested at most `MAX_NESTING` deep). What a frame's values mean here
(a sequence number, a route) is for the node to judge; a payload is for the codec.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, Literal

import msgspec

__all__ = [
    "ACK",
    "BYE",
    "CLOSE",
    "LOST",
    "MAX_FRAME",
    "MAX_NESTING",
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
ROUTES: Final = 8  # from here on, the kinds about the link itself
NODE_LOST: Final = 9
BYE: Final = 10
KINDS: Final = frozenset(range(USER, BYE + 1))

MAX_FRAME: Final = 256 * 1024 * 1024
"""The largest frame a link accepts (256 MiB): a peer that claims more breaks the framing."""

MAX_NESTING: Final = 64
"""How deep descriptors may nest (a port in a message queued at a port in a message queued at
...): deeper is not a frame."""

_LENGTH: Final = struct.Struct("<I")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_decode_user = msgspec.msgpack.Decoder(
    tuple[int, int, Literal[1], int, Literal[0, 1], int, bytes, list[Any], bool]
).decode
_NINE: Final = b"\x99"  # the head of a msgpack array of nine: a USER frame's


class FrameError(Exception):
    """Bytes that are not a frame: the peer that sent them breaks the protocol."""


def encode(dst: int, src: int, kind: int, *fields: object) -> bytes:
    """One frame, unframed (for a link that keeps message boundaries)."""
    return _encode((dst, src, kind, *fields))


def framed(frame: bytes) -> bytes:
    """`frame` with its length in front, for a stream."""
    return _LENGTH.pack(len(frame)) + frame


def decode(frame: bytes) -> Sequence[Any]:
    """The fields of a frame, `[dst, src, kind, *fields]`, of the shape its kind has.

    Raises:
        FrameError: not msgpack, not an array of two ints and a known kind, or not the fields
            of that kind (their number and types, a descriptor's too).
    """
    if frame[:1] == _NINE:  # most likely USER: msgspec checks its types as it decodes
        try:
            user: tuple[Any, ...] = _decode_user(frame)
        except (msgspec.DecodeError, RecursionError):
            pass  # the slow way says what is wrong
        else:
            if not user[7] or _descriptors(user[7], 1):
                return user
            raise FrameError(f"a frame of kind {USER} without the fields of its kind")
    try:
        fields = _decode(frame)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise FrameError(f"not a frame: {exc}") from None
    if (
        type(fields) is not list
        or len(fields) < 3
        or type(fields[0]) is not int
        or type(fields[1]) is not int
        or type(fields[2]) is not int
    ):
        raise FrameError("not a frame: expected [dst, src, kind, ...]")
    kind = fields[2]
    shape = _SHAPES.get(kind)
    if shape is None:
        raise FrameError(f"not a frame: no frame kind {kind}")
    if not shape(fields):
        raise FrameError(f"a frame of kind {kind} without the fields of its kind")
    return fields


def _end(value: object) -> bool:
    return type(value) is int and (value == 0 or value == 1)


def _user(f: list[Any]) -> bool:
    return (
        len(f) == 9
        and type(f[3]) is int
        and _end(f[4])
        and type(f[5]) is int
        and type(f[6]) is bytes
        and type(f[7]) is list
        and type(f[8]) is bool
        and (not f[7] or _descriptors(f[7], 1))
    )


def _descriptors(items: list[Any], depth: int) -> bool:
    if depth > MAX_NESTING:
        return False
    for d in items:
        if not (
            type(d) is list
            and 8 <= len(d) <= 10
            and type(d[0]) is int
            and _end(d[1])
            and (d[2] is None or type(d[2]) is int)
            and type(d[3]) is int
            and type(d[4]) is int
            and type(d[5]) is list
            and type(d[6]) is list
            and (d[7] is None or type(d[7]) is int)
            and (len(d) < 9 or d[8] is None or type(d[8]) is int)
            and (len(d) < 10 or type(d[9]) is int)
        ):
            return False
        for q in d[5]:
            if not (
                type(q) is list
                and len(q) == 3
                and type(q[0]) is int
                and 0 <= q[0] <= 2
                and type(q[1]) is bytes
                and type(q[2]) is list
                and (not q[2] or _descriptors(q[2], depth + 1))
            ):
                return False
        for e in d[6]:
            if not (
                type(e) is list
                and len(e) == 4
                and type(e[0]) is int
                and type(e[1]) is bytes
                and type(e[2]) is list
                and type(e[3]) is bool
                and (not e[2] or _descriptors(e[2], depth + 1))
            ):
                return False
    return True


def _end_and_int(f: list[Any]) -> bool:  # CLOSE, MOVED_ACK, ACK
    return len(f) == 6 and type(f[3]) is int and _end(f[4]) and type(f[5]) is int


def _end_and_two_ints(f: list[Any]) -> bool:  # MOVED, REHOMED
    return (
        len(f) == 7 and type(f[3]) is int and _end(f[4]) and type(f[5]) is int and type(f[6]) is int
    )


def _lost(f: list[Any]) -> bool:
    return len(f) == 5 and type(f[3]) is int and _end(f[4])


def _names(f: list[Any]) -> bool:  # ROUTES, NODE_LOST
    return len(f) == 4 and type(f[3]) is list and all(type(n) is int for n in f[3])


def _bye(f: list[Any]) -> bool:
    return len(f) == 3


_SHAPES: Final[dict[int, Callable[[list[Any]], bool]]] = {
    USER: _user,
    CLOSE: _end_and_int,
    MOVED: _end_and_two_ints,
    MOVED_ACK: _end_and_int,
    ACK: _end_and_int,
    LOST: _lost,
    REHOMED: _end_and_two_ints,
    ROUTES: _names,
    NODE_LOST: _names,
    BYE: _bye,
}


class Reader:
    """Splits a byte stream into frames: feed it what arrives, get whole frames back."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | memoryview) -> Iterator[bytes]:
        """The frames completed by `data` (none if it ends mid-frame), one by one: those
        before a bad length come out before the error does.

        Raises:
            FrameError: (from the iterator) a frame longer than `MAX_FRAME`; the stream cannot
                be trusted after it.
        """
        self._buffer += data
        return self._frames()

    def _frames(self) -> Iterator[bytes]:
        buffer = self._buffer
        start = 0
        end = len(buffer)
        try:
            while end - start >= 4:
                (length,) = _LENGTH.unpack_from(buffer, start)
                if length > MAX_FRAME:
                    raise FrameError(f"a frame of {length} bytes is over the limit of {MAX_FRAME}")
                if end - start - 4 < length:
                    break
                yield bytes(buffer[start + 4 : start + 4 + length])
                start += 4 + length
        finally:
            if start:
                del buffer[:start]

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)
