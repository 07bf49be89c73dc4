"""The wire codec: `encode` a message's value into bytes for another process, `decode` it there.

The format is described in `opcodes.py`; `encoder.py` walks a message into tokens and
`decoder.py` rebuilds it from them; this module holds the two ends. Decoding is bounded:
msgspec decodes against a fixed type, lengths are checked before anything is allocated, no
count read from a frame preallocates, and the hashing of keys that a frame could make costly
(shared tuples, colliding hashes) is charged to a budget proportional to the frame's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec
from msgspec.msgpack import Ext

from .. import _clone
from .._buffers import ArrayBuffer
from .._clone import _error, _Failure, _short, _too_deep
from .._exceptions import DataCloneError
from .._transfer import Transferable
from . import leaves
from .decoder import Malformed, Rebuild
from .encoder import ATOMS, Encoder
from .leaves import Inexpressible

__all__ = ["DecodeError", "decode", "encode"]

_pack = msgspec.msgpack.Encoder().encode

_Scalar = None | bool | int | float | str
_Token = _Scalar | Ext | list[_Scalar] | dict[str, _Scalar]
_FRAME: Final = msgspec.msgpack.Decoder(_Token)
_STREAM: Final = msgspec.msgpack.Decoder(list[_Token])


class DecodeError(Exception):
    """A frame that is not the encoding of a message this process can rebuild.

    Args:
        reason: what was wrong.
        path: where, as a Python expression rooted at `message`.
    """

    def __init__(self, reason: str, path: str = "message") -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason
        self.path = path


def encode(
    message: object,
    transfer: list[Transferable],
    shared: list[ArrayBuffer] | None = None,
    room: int = 0,
) -> tuple[bytes, list[Transferable]]:
    """The message's bytes, and the transferables it holds in the order the bytes refer to
    them: `transfer` itself (each listed port or buffer is referred to by its index there).
    Detaches nothing, moves nothing: the caller commits.

    With a `shared` list, up to `room` of the `ArrayBuffer`s that the message holds and
    `transfer` does not list, those whose bytes are in shared memory (a memfd), are appended
    to it instead of having their bytes copied into the message: the bytes refer to each by
    its index there, and the caller sends the buffers beside them (`decode` is given them as
    `shared`). Every other buffer is copied in, as without `shared`.

    Raises:
        DataCloneError: structured clone refuses the message (its path as clone's: a port not
            in `transfer`, a function, ...), or it holds what the wire cannot carry (say a
            datetime whose tzinfo is not a timezone or a ZoneInfo), or `transfer` holds a
            detached object.
    """
    t = type(message)
    data = plain(message)
    if data is not None:
        return (data, transfer) if not transfer else (data, _checked(transfer))
    if t in _ATOMS:  # beyond 64 bits, or lone surrogates
        return _pack(leaves.atom(message)), _checked(transfer)  # type: ignore[arg-type]
    write = leaves.ENCODERS.get(t)
    if write is None:
        return _encode(message, transfer, shared, room), _checked(transfer)
    try:
        return _pack(write(message)), _checked(transfer)
    except Inexpressible as e:
        raise DataCloneError(f"{e} ({_short(message)})", value=message) from None


_ATOMS: Final = ATOMS


def plain(message: object) -> bytes | None:
    """The bytes of a message that is plain msgpack (a scalar, a tuple of scalars, a dict of
    str to scalars), as `encode` would give them; `None` for any other message (then call
    `encode`). It holds no transferable, so it never raises."""
    t = type(message)
    try:
        if t in _ATOMS:
            return _pack(message)
        if t is tuple:
            for v in message:  # type: ignore[attr-defined]
                if type(v) not in _ATOMS:
                    return None
            return _pack(message)
        if t is dict:
            for k, v in message.items():  # type: ignore[attr-defined]
                if type(k) is not str or type(v) not in _ATOMS:
                    return None
            return _pack(message)
    except (OverflowError, UnicodeEncodeError):  # beyond 64 bits, or lone surrogates
        return None
    return None


def _checked(transfer: list[Transferable]) -> list[Transferable]:
    """`transfer`, once none of it is detached (checked after the message, as
    `_clone.serialize` checks)."""
    for i, item in enumerate(transfer):
        reason = item._transfer_refusal()
        if reason is not None:
            raise DataCloneError(reason, value=item, path=f"transfer[{i}]")
    return transfer


def _encode(
    message: object, transfer: list[Transferable], shared: list[ArrayBuffer] | None, room: int
) -> bytes:
    """A message that is not a single flat value, as a STREAM."""
    moved = {id(item): i for i, item in enumerate(transfer)}
    start = None if shared is None else len(shared)
    for careful in (False, True):  # careful: check every int's size and every str's UTF-8
        if shared is not None:
            del shared[start:]  # what an earlier walk found, found again
        encoder = Encoder(moved, careful, shared, room)
        try:
            encoder.value(message)
        except _Failure as f:
            raise _error(f, "message") from f.__cause__
        except RecursionError:
            raise _too_deep(message) from None
        try:
            payload = _pack(encoder.out)
        except (OverflowError, UnicodeEncodeError):
            continue
        if encoder.risky:  # the receiver runs classes' own code to rebuild: try it here
            _clone.clone_replacing(message, {id(item): item for item in transfer}, "message")
        return _pack(Ext(leaves.STREAM, payload))
    raise DataCloneError(
        "the wire cannot carry a class, field or attribute name that is not valid UTF-8",
        value=message,
    )


def decode(data: bytes, transferred: Sequence[object], shared: Sequence[object] = ()) -> object:
    """Rebuild a message from `encode`'s bytes; `transferred[i]` stands for the sender's i-th
    transferable (the port or buffer the caller made for it), `shared[i]` for the i-th buffer
    it sent beside the bytes.

    Raises:
        DecodeError: the frame is malformed, names a class this process does not have (or of
            a kind clone does not rebuild), or rebuilding it failed; never another exception.
    """
    try:
        frame = _FRAME.decode(data)
    except Exception as e:
        raise DecodeError(f"not a frame: {e}") from None
    t = type(frame)
    if t is list:
        return tuple(frame)  # type: ignore[arg-type]
    if t is not Ext:
        return frame
    ext: Ext = frame  # type: ignore[assignment]
    tokens: Sequence[object] = (ext,)  # an extension other than STREAM: a leaf
    if ext.code == leaves.STREAM:
        try:
            tokens = _STREAM.decode(ext.data)
        except Exception as e:
            raise DecodeError(f"not a token stream: {e}") from None
    try:
        return Rebuild(transferred, len(data), shared).run(tokens)
    except Malformed as e:
        raise DecodeError(e.reason, e.path) from e.__cause__
