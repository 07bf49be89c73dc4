"""The frames nodes exchange: their kinds, their envelope, and how they are framed on a stream.

Every frame is a msgpack array `[dst, src, kind, *fields]`: the node it is for, the node that
sent it, and what it says. A node checks every frame that comes in (`decode`) and passes one
that is not for it on unchanged. On a stream a frame is an 8-byte header, its length and the
number of fds that came with it (each 4 bytes, little-endian), then the frame; the fds ride on
the first byte of the header, or of the frame, whatever the sender wrote them with. The kinds
and fields:

- USER `cid, end, seq, payload, descriptors, ask[, buffers]`: a message for the end
  `(cid, end)`; `ask` asks for a read acknowledgement (ACK); `buffers` are the lengths of its
  shared buffers, whose fds come with the frame (`fds.py` says in which order).
- USERS `cid, end, seq, payloads, asks`: messages `seq`, `seq + 1`, ... for the end
  `(cid, end)`, one payload each, none with ports or shared buffers: what USER frames of them
  would say, in one frame (a link that falls behind batches them); `asks` are the offsets, in
  `payloads`, of those that ask for a read acknowledgement.
- CLOSE `cid, end, last`: the peer of `(cid, end)` closed after its message `last`.
- MOVED `cid, end, location, forward, hops`: the peer of `(cid, end)` moved to `location`, its
  move number `hops`; the node `forward` forwards what it sent there before.
- MOVED_ACK `cid, end, last, hops, forward`: the peer of `(cid, end)` had sent up to `last`
  (-1: it was gone) when it heard of the move `hops`, which left a forward at `forward`.
- DONE `cid, end, hops`: the forward of `(cid, end)` left by its move `hops` can go.
- ACK `cid, end, read`: the peer of `(cid, end)` has read up to `read`.
- LOST `cid, end`: the peer of `(cid, end)` is gone, unannounced.
- REHOMED `cid, end, location, after`: the homed peer of `(cid, end)` lives at `location` now;
  send it again what was sent after `after`.
- ROUTES `names`: these nodes are reached through the sender.
- NODE_LOST `names`: these nodes are gone.
- BYE: the sender closes the link on purpose.

ROUTES, NODE_LOST and BYE are about the link: a node sends them only to its neighbour. A
descriptor is how a port travels inside a USER frame (`carry.py` says what it means):
`[cid, end, location, send, recv, queued, early, closing, cursor, asked, hops, peer_hops,
behind]` (the last five, or three, may be left off), with `queued` a list of `[kind, payload,
descriptors, buffers]` (kind 0 a message, 1 a messageerror, 2 the close; `buffers` left off
when it has none), `early` a list of `[seq, payload, descriptors, ask, buffers, fds]` (the
last two left off when it came with no fds; `fds` how many of the frame's fds are its, its
ports' messages' too), and `behind` a list of `[hops, node, last]` (the forwards its moves
left that it has not released);
`location`, `closing` and `cursor` may be nil. `buffers` is a list of lengths, one to
`MAX_FDS` of them (none too in an early message).

`decode` checks all of that: the shape of a frame of each kind and the types of its fields,
the descriptors in it too (nested at most `MAX_NESTING` deep). What a frame's values mean here
(a sequence number, a route) is for the node to judge; a payload is for the codec.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Final, Literal

import msgspec

__all__ = [
    "ACK",
    "BYE",
    "CLOSE",
    "DONE",
    "LOST",
    "HEADER",
    "MAX_FDS",
    "MAX_FRAME",
    "MAX_NESTING",
    "MOVED",
    "MOVED_ACK",
    "NODE_LOST",
    "REHOMED",
    "ROUTES",
    "USER",
    "USERS",
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
DONE: Final = 11  # about an end again
USERS: Final = 12
KINDS: Final = frozenset(range(USER, USERS + 1))

MAX_FRAME: Final = 256 * 1024 * 1024
"""The largest frame a link accepts (256 MiB): a peer that claims more breaks the framing."""

MAX_NESTING: Final = 64
"""How deep descriptors may nest (a port in a message queued at a port in a message queued at
...): deeper is not a frame."""

MAX_FDS: Final = 253
"""The most fds that come with one frame (the kernel's `SCM_MAX_FD`, per `sendmsg`)."""

HEADER: Final = struct.Struct("<II")  # the frame's length, the number of its fds
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_Lengths = Annotated[
    list[Annotated[int, msgspec.Meta(ge=0)]], msgspec.Meta(min_length=1, max_length=MAX_FDS)
]
_decode_user = msgspec.msgpack.Decoder(
    tuple[int, int, Literal[1], int, Literal[0, 1], int, bytes, list[Any], bool]
).decode
_decode_user_buffers = msgspec.msgpack.Decoder(
    tuple[int, int, Literal[1], int, Literal[0, 1], int, bytes, list[Any], bool, _Lengths]
).decode
_decode_users = msgspec.msgpack.Decoder(
    tuple[
        int,
        int,
        Literal[12],
        int,
        Literal[0, 1],
        int,
        Annotated[list[bytes], msgspec.Meta(min_length=1)],
        list[Annotated[int, msgspec.Meta(ge=0)]],
    ]
).decode
_TYPED: Final = {
    b"\x99": _decode_user,  # the head of a msgpack array of nine: a USER frame's
    b"\x9a": _decode_user_buffers,  # of ten: a USER frame's with shared buffers
    b"\x98": _decode_users,  # of eight: a USERS frame's (or MOVED's, MOVED_ACK's: slow way)
}


class FrameError(Exception):
    """Bytes that are not a frame: the peer that sent them breaks the protocol."""


def encode(dst: int, src: int, kind: int, *fields: object) -> bytes:
    """One frame, unframed (for a link that keeps message boundaries)."""
    return _encode((dst, src, kind, *fields))


def framed(frame: bytes, fds: int = 0) -> bytes:
    """`frame` with its header in front, for a stream: `fds` fds go with it."""
    return HEADER.pack(len(frame), fds) + frame


def decode(frame: bytes) -> Sequence[Any]:
    """The fields of a frame, `[dst, src, kind, *fields]`, of the shape its kind has.

    Raises:
        FrameError: not msgpack, not an array of two ints and a known kind, or not the fields
            of that kind (their number and types, a descriptor's too).
    """
    typed = _TYPED.get(frame[:1])
    if typed is not None:  # most likely USER(S): msgspec checks its types as it decodes
        try:
            user: tuple[Any, ...] = typed(frame)
        except (msgspec.DecodeError, RecursionError):
            pass  # the slow way says what is wrong
        else:
            kind = user[2]
            if kind == USER and (not user[7] or _descriptors(user[7], 1)):
                return user
            if kind == USERS and _offsets(user[7], len(user[6])):
                return user
            raise FrameError(f"a frame of kind {kind} without the fields of its kind")
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
        9 <= len(f) <= 10
        and type(f[3]) is int
        and _end(f[4])
        and type(f[5]) is int
        and type(f[6]) is bytes
        and type(f[7]) is list
        and type(f[8]) is bool
        and (len(f) == 9 or _lengths(f[9]))
        and (not f[7] or _descriptors(f[7], 1))
    )


def _users(f: list[Any]) -> bool:
    return (
        len(f) == 8
        and type(f[3]) is int
        and _end(f[4])
        and type(f[5]) is int
        and type(f[6]) is list
        and len(f[6]) > 0
        and all(type(p) is bytes for p in f[6])
        and type(f[7]) is list
        and _offsets(f[7], len(f[6]))
    )


def _offsets(value: list[Any], count: int) -> bool:
    """A USERS frame's asks: offsets into its `count` payloads."""
    return all(type(n) is int and 0 <= n < count for n in value)


def _lengths(value: object, least: int = 1) -> bool:
    """The lengths of a message's shared buffers: `least` at least, `MAX_FDS` at most."""
    return (
        type(value) is list
        and least <= len(value) <= MAX_FDS
        and all(type(n) is int and n >= 0 for n in value)
    )


def _descriptors(items: list[Any], depth: int) -> bool:
    if depth > MAX_NESTING:
        return False
    for d in items:
        if not (
            type(d) is list
            and (8 <= len(d) <= 10 or len(d) == 13)
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
            and (len(d) < 13 or _behind(d))
        ):
            return False
        for q in d[5]:
            if not (
                type(q) is list
                and 3 <= len(q) <= 4
                and type(q[0]) is int
                and 0 <= q[0] <= 2
                and type(q[1]) is bytes
                and type(q[2]) is list
                and (len(q) == 3 or _lengths(q[3]))
                and (not q[2] or _descriptors(q[2], depth + 1))
            ):
                return False
        for e in d[6]:
            if not (
                type(e) is list
                and (len(e) == 4 or len(e) == 6)
                and type(e[0]) is int
                and type(e[1]) is bytes
                and type(e[2]) is list
                and type(e[3]) is bool
                and (len(e) == 4 or (_lengths(e[4], 0) and type(e[5]) is int and e[5] >= 0))
                and (not e[2] or _descriptors(e[2], depth + 1))
            ):
                return False
    return True


def _behind(d: list[Any]) -> bool:
    return (
        type(d[10]) is int
        and type(d[11]) is int
        and type(d[12]) is list
        and all(type(b) is list and len(b) == 3 and all(type(n) is int for n in b) for b in d[12])
    )


def _end_and_three_ints(f: list[Any]) -> bool:  # MOVED, MOVED_ACK
    return len(f) == 8 and type(f[3]) is int and _end(f[4]) and all(type(n) is int for n in f[5:])


def _end_and_int(f: list[Any]) -> bool:  # CLOSE, ACK, DONE
    return len(f) == 6 and type(f[3]) is int and _end(f[4]) and type(f[5]) is int


def _end_and_two_ints(f: list[Any]) -> bool:  # REHOMED
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
    USERS: _users,
    CLOSE: _end_and_int,
    MOVED: _end_and_three_ints,
    MOVED_ACK: _end_and_three_ints,
    ACK: _end_and_int,
    LOST: _lost,
    REHOMED: _end_and_two_ints,
    ROUTES: _names,
    NODE_LOST: _names,
    BYE: _bye,
    DONE: _end_and_int,
}


class Reader:
    """Splits a byte stream into frames: feed it what arrives, get whole frames back, each
    with the number of fds its header announces."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | memoryview) -> Iterator[tuple[bytes, int]]:
        """The frames completed by `data` (none if it ends mid-frame), one by one, each with
        the number of fds its header announces: those before a bad header come out before
        the error does. What is left of `data` after its last whole frame is kept (copied:
        the caller may reuse `data`'s memory once the frames are out).

        Raises:
            FrameError: (from the iterator) a frame longer than `MAX_FRAME`, or with more
                than `MAX_FDS` fds; the stream cannot be trusted after it.
        """
        if self._buffer:
            self._buffer += data
            return self._frames(self._buffer, True)
        return self._frames(data, False)  # the common case: frames read whole, no copy

    def _frames(
        self, buffer: bytearray | bytes | memoryview, kept: bool
    ) -> Iterator[tuple[bytes, int]]:
        start = 0
        end = len(buffer)
        size = HEADER.size
        try:
            while end - start >= size:
                length, fds = HEADER.unpack_from(buffer, start)
                if length > MAX_FRAME:
                    raise FrameError(f"a frame of {length} bytes is over the limit of {MAX_FRAME}")
                if fds > MAX_FDS:
                    raise FrameError(f"a frame announces {fds} fds, over the limit of {MAX_FDS}")
                if end - start - size < length:
                    break
                yield bytes(buffer[start + size : start + size + length]), fds
                start += size + length
        finally:
            if kept:
                if start:
                    del buffer[:start]  # type: ignore[union-attr]
            elif start < end:
                self._buffer += buffer[start:end]

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
