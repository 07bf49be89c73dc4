"""Atomic values msgpack cannot hold as they are, as extension types: both directions.

Each is an `Ext(code, payload)`; each payload's format is given next to its code below.
Readers raise `ValueError` (or whatever the type's constructor raises) for a malformed
payload; the codec turns that into a `DecodeError`.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import os
import pathlib
import re
import struct
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any, Final

from msgspec.msgpack import Ext

from .._buffers import ArrayBuffer

__all__ = ["ENCODERS", "READERS", "STREAM", "Inexpressible", "atom"]

# Extension codes. Each payload is described where it is written.
BYTES: Final = 1  # the bytes
STR: Final = 2  # a str with lone surrogates: UTF-8, "surrogatepass"
BIGINT: Final = 3  # an int beyond 64 bits: big-endian two's complement
COMPLEX: Final = 4  # ">dd": real, imag
DECIMAL: Final = 5  # str(d), ASCII
UUID: Final = 6  # the 16 bytes, then one byte for is_safe when known (0 safe, 1 unsafe)
DATE: Final = 7  # ">HBB": year, month, day
TIME: Final = 8  # ">BBBIB": hour, minute, second, microsecond, fold; then a zone
DATETIME: Final = 9  # ">HBBBBBIB": the date's and the time's fields; then a zone
TIMEDELTA: Final = 10  # ">iII": days, seconds, microseconds
TIMEZONE: Final = 11  # a zone (below), never empty
RANGE: Final = 12  # start, stop, step: each a ">I" length and that many BIGINT bytes
PATH: Final = 13  # one byte (the index in _PATHS), then str(path) as STR
BYTEARRAY: Final = 14  # the bytes (a mutable value: it takes an id)
BUFFER: Final = 15  # an ArrayBuffer not transferred: its bytes (it takes an id)
STREAM: Final = 16  # the whole frame when it is not a single flat value: the token list

# A zone, after a time's fields: nothing (naive); 1 and ">q" microseconds of offset (a
# datetime.timezone); 2, ">q" and the name as STR (a named timezone); 3 and the key of a
# zoneinfo.ZoneInfo (ASCII).
_NAIVE, _OFFSET, _NAMED, _ZONE = b"", 1, 2, 3

_DATE: Final = struct.Struct(">HBB")
_TIME: Final = struct.Struct(">BBBIB")
_DATETIME: Final = struct.Struct(">HBBBBBIB")
_DELTA: Final = struct.Struct(">iII")
_COMPLEX: Final = struct.Struct(">dd")
_MICROSECONDS: Final = struct.Struct(">q")
_LENGTH: Final = struct.Struct(">I")
_PATHS: Final[tuple[type[pathlib.PurePath], ...]] = (
    pathlib.PurePosixPath,
    pathlib.PureWindowsPath,
    pathlib.PosixPath,
    pathlib.WindowsPath,
)
_SAFETY: Final = {uuid.SafeUUID.safe: b"\x00", uuid.SafeUUID.unsafe: b"\x01"}


class Inexpressible(Exception):
    """A value structured clone accepts but the wire cannot carry; the message says why."""


# -- writing ------------------------------------------------------------------------------------


def atom(x: int | str) -> Ext:
    """An int or a str that msgpack cannot hold itself (beyond 64 bits; lone surrogates)."""
    if type(x) is int:
        return Ext(BIGINT, _int_bytes(x))
    return Ext(STR, _text(x))  # type: ignore[arg-type]


def _int_bytes(x: int) -> bytes:
    return x.to_bytes(x.bit_length() // 8 + 1, "big", signed=True)


def _text(x: str) -> bytes:
    return x.encode("utf-8", "surrogatepass")


def _zone(tz: datetime.tzinfo | None) -> bytes:
    if tz is None:
        return _NAIVE
    if type(tz) is datetime.timezone:
        args = tz.__getinitargs__()  # type: ignore[attr-defined]
        offset: datetime.timedelta = args[0]
        micro = _MICROSECONDS.pack(offset // datetime.timedelta(microseconds=1))
        if len(args) == 1:
            return bytes((_OFFSET,)) + micro
        return bytes((_NAMED,)) + micro + _text(args[1])
    if type(tz) is zoneinfo.ZoneInfo:
        if tz.key is None:
            raise Inexpressible("the wire names a ZoneInfo by its key, and this one has none")
        return bytes((_ZONE,)) + _text(tz.key)
    raise Inexpressible(
        f"the wire carries a tzinfo only if it is a datetime.timezone or a zoneinfo.ZoneInfo, "
        f"not a {type(tz).__qualname__!r}"
    )


def _datetime(x: datetime.datetime) -> Ext:
    head = _DATETIME.pack(x.year, x.month, x.day, x.hour, x.minute, x.second, x.microsecond, x.fold)
    return Ext(DATETIME, head + _zone(x.tzinfo))


def _time(x: datetime.time) -> Ext:
    return Ext(
        TIME, _TIME.pack(x.hour, x.minute, x.second, x.microsecond, x.fold) + _zone(x.tzinfo)
    )


def _uuid(x: uuid.UUID) -> Ext:
    return Ext(UUID, x.bytes + _SAFETY.get(x.is_safe, b""))


def _range(x: range) -> Ext:
    parts = [_int_bytes(n) for n in (x.start, x.stop, x.step)]
    return Ext(RANGE, b"".join(_LENGTH.pack(len(p)) + p for p in parts))


def _path(x: pathlib.PurePath) -> Ext:
    return Ext(PATH, bytes((_PATHS.index(type(x)),)) + _text(str(x)))


ENCODERS: Final[dict[type, Callable[[Any], Ext]]] = {
    bytes: functools.partial(Ext, BYTES),
    complex: lambda x: Ext(COMPLEX, _COMPLEX.pack(x.real, x.imag)),
    decimal.Decimal: lambda x: Ext(DECIMAL, str(x).encode("ascii")),
    uuid.UUID: _uuid,
    datetime.date: lambda x: Ext(DATE, _DATE.pack(x.year, x.month, x.day)),
    datetime.time: _time,
    datetime.datetime: _datetime,
    datetime.timedelta: lambda x: Ext(TIMEDELTA, _DELTA.pack(x.days, x.seconds, x.microseconds)),
    datetime.timezone: lambda x: Ext(TIMEZONE, _zone(x)),
    range: _range,
    **{cls: _path for cls in _PATHS},
}
"""How each atomic type that is not a msgpack scalar is written (exact types only)."""


# -- reading ------------------------------------------------------------------------------------


def _read_zone(data: bytes, at: int) -> datetime.tzinfo | None:
    if at == len(data):
        return None
    kind = data[at]
    if kind in (_OFFSET, _NAMED):
        (micro,) = _MICROSECONDS.unpack_from(data, at + 1)
        offset = datetime.timedelta(microseconds=micro)
        if kind == _OFFSET:
            if len(data) != at + 1 + _MICROSECONDS.size:
                raise ValueError("bytes after a timezone's offset")
            return datetime.timezone(offset)
        return datetime.timezone(offset, data[at + 1 + _MICROSECONDS.size :].decode(_UTF8, _PASS))
    if kind == _ZONE:
        key = data[at + 1 :].decode("ascii")
        if not _known_zone(key):
            raise ValueError(f"no time zone {key!r} here")
        return zoneinfo.ZoneInfo(key)
    raise ValueError(f"unknown zone kind {kind}")


_UTF8, _PASS = "utf-8", "surrogatepass"


_ZONE_KEY: Final = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*")


def _known_zone(key: str) -> bool:
    """Whether `key` names a zone this machine has: a file under `zoneinfo.TZPATH` (where
    ZoneInfo looks first), or one the tzdata package lists. ZoneInfo would otherwise import
    a module of tzdata that the key names."""
    if len(key) > 255 or not _ZONE_KEY.fullmatch(key):
        return False
    if any(os.path.isfile(os.path.join(root, key)) for root in zoneinfo.TZPATH):
        return True
    return key in _listed_zones()


@functools.cache
def _listed_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _read_datetime(data: bytes) -> datetime.datetime:
    y, mo, d, h, mi, s, us, fold = _DATETIME.unpack_from(data)
    tz = _read_zone(data, _DATETIME.size)
    return datetime.datetime(y, mo, d, h, mi, s, us, tzinfo=tz, fold=fold)


def _read_time(data: bytes) -> datetime.time:
    h, mi, s, us, fold = _TIME.unpack_from(data)
    return datetime.time(h, mi, s, us, tzinfo=_read_zone(data, _TIME.size), fold=fold)


def _read_timezone(data: bytes) -> datetime.tzinfo:
    tz = _read_zone(data, 0)
    if type(tz) is not datetime.timezone:
        raise ValueError("a TIMEZONE holds a datetime.timezone")
    return tz


def _read_uuid(data: bytes) -> uuid.UUID:
    if len(data) == 16:
        return uuid.UUID(bytes=data)
    if len(data) != 17 or data[16] > 1:
        raise ValueError("a UUID is 16 bytes and an optional safety byte (0 or 1)")
    safety = uuid.SafeUUID.safe if data[16] == 0 else uuid.SafeUUID.unsafe
    return uuid.UUID(bytes=data[:16], is_safe=safety)


def _read_range(data: bytes) -> range:
    numbers: list[int] = []
    at = 0
    for _ in range(3):
        (size,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if at + size > len(data):
            raise ValueError("a RANGE number runs past its payload")
        numbers.append(int.from_bytes(data[at : at + size], "big", signed=True))
        at += size
    if at != len(data):
        raise ValueError("bytes after a RANGE's three numbers")
    return range(*numbers)


def _read_path(data: bytes) -> pathlib.PurePath:
    if not data or data[0] >= len(_PATHS):
        raise ValueError("a PATH starts with the index of its class")
    return _PATHS[data[0]](data[1:].decode(_UTF8, _PASS))


def _exact(count: int, read: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def read_exactly(data: bytes) -> Any:
        if len(data) != count:
            raise ValueError(f"the payload is {len(data)} bytes, not {count}")
        return read(data)

    return read_exactly


def _read_complex(data: bytes) -> complex:
    return complex(*_COMPLEX.unpack(data))


READERS: Final[dict[int, Callable[[bytes], Any]]] = {
    BYTES: bytes,
    STR: lambda data: data.decode(_UTF8, _PASS),
    BIGINT: lambda data: int.from_bytes(data, "big", signed=True),
    COMPLEX: _read_complex,
    DECIMAL: lambda data: decimal.Decimal(data.decode("ascii")),
    UUID: _read_uuid,
    DATE: _exact(_DATE.size, lambda data: datetime.date(*_DATE.unpack(data))),
    TIME: _read_time,
    DATETIME: _read_datetime,
    TIMEDELTA: _exact(
        _DELTA.size,
        lambda data: datetime.timedelta(*_DELTA.unpack(data)),
    ),
    TIMEZONE: _read_timezone,
    RANGE: _read_range,
    PATH: _read_path,
    BYTEARRAY: bytearray,
    BUFFER: lambda data: ArrayBuffer._adopt(bytearray(data)),
}
"""How each extension code's payload is read back into its value (STREAM is the codec's)."""
