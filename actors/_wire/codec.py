"""The wire codec (a minimal stand-in: plain msgpack values, ports and buffers by index)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .._buffers import ArrayBuffer
from .._exceptions import DataCloneError
from .._transfer import Transferable

__all__ = ["DecodeError", "encode", "decode"]

_PORT = 1
_BUFFER = 2
_COPY = 3
_TUPLE = 4


class DecodeError(Exception):
    """Bytes that do not decode to a message."""


def encode(message: object, transfer: list[Transferable]) -> tuple[bytes, list[Transferable]]:
    index = {id(t): i for i, t in enumerate(transfer)}

    def hook(value: object) -> object:
        i = index.get(id(value))
        if i is not None:
            return msgspec.msgpack.Ext(
                _PORT if not isinstance(value, ArrayBuffer) else _BUFFER, i.to_bytes(4, "little")
            )
        if isinstance(value, ArrayBuffer):
            return msgspec.msgpack.Ext(_COPY, bytes(value))
        raise DataCloneError(f"cannot send a {type(value).__qualname__!r} object", value=value)

    try:
        return msgspec.msgpack.encode(message, enc_hook=hook), transfer
    except (TypeError, ValueError) as exc:
        raise DataCloneError(str(exc), value=message) from None


def decode(data: bytes, transferred: Sequence[object]) -> object:
    def hook(code: int, body: memoryview) -> object:
        if code in (_PORT, _BUFFER):
            i = int.from_bytes(body, "little")
            if i >= len(transferred):
                raise DecodeError("a transferable index out of range")
            return transferred[i]
        if code == _COPY:
            return ArrayBuffer(bytes(body))
        raise DecodeError(f"unknown extension {code}")

    try:
        return msgspec.msgpack.decode(data, ext_hook=hook)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(str(exc)) from None
