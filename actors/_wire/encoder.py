"""The sending half of the codec: a message's object graph walked into a list of tokens."""

from __future__ import annotations

import enum
from typing import Any, Final

from msgspec.msgpack import Ext

from .. import _clone
from .._buffers import ArrayBuffer
from .._clone import _MISSING, _Failure, _short
from .._exceptions import DataCloneError
from .._transfer import Transferable
from . import classes, leaves
from .classes import ClassInfo
from .leaves import Inexpressible
from .opcodes import (
    CLASS,
    DICT,
    DICT_STR,
    ENUM,
    EXCEPTION,
    FLAG,
    FROZEN,
    FROZEN_FLAT,
    FROZENSET,
    FROZENSET_FLAT,
    LIST,
    LIST_FLAT,
    MISSING,
    MOVED,
    NAMEDTUPLE,
    NAMEDTUPLE_FLAT,
    OBJECT,
    OBJECT_FLAT,
    REF,
    SET,
    SET_FLAT,
    SHARED,
    TUPLE,
    TUPLE_FLAT,
)

__all__ = ["ATOMS", "Encoder"]

ATOMS: Final = frozenset({type(None), bool, int, float, str})
"""The types msgpack holds as they are (an int only within 64 bits, a str only in UTF-8)."""
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1


def _plain(x: object) -> bool:
    """Whether msgpack holds the scalar `x` as it is (an int of 64 bits, a str of UTF-8)."""
    t = type(x)
    if t is int:
        return _INT_MIN <= x <= _INT_MAX  # type: ignore[operator]
    if t is str:
        if x.isascii():  # type: ignore[attr-defined]
            return True
        try:
            x.encode()  # type: ignore[attr-defined]
        except UnicodeEncodeError:
            return False
    return True


class Encoder:
    """One message's walk, as `_clone._Cloner` walks it: tokens out, an id per object."""

    __slots__ = (
        "careful",
        "classes",
        "groups",
        "keep",
        "keys",
        "memo",
        "moved",
        "next_id",
        "out",
        "pending",
        "risky",
        "room",
        "shared",
    )

    def __init__(
        self,
        moved: dict[int, int],
        careful: bool,
        shared: list[ArrayBuffer] | None = None,
        room: int = 0,
    ) -> None:
        self.out: list[object] = []
        self.memo: dict[int, int] = {}  # id(object) -> its id on the wire
        self.next_id = 0
        self.moved = moved  # id(transferable) -> its index in transfer
        self.classes: dict[int, int] = {}  # id(class) -> its index on the wire
        self.pending: dict[int, tuple[list[Any], BaseException]] = {}  # exceptions in args
        self.groups: set[int] = set()  # exception groups whose args are being walked
        self.keep: list[object] = []  # objects made by the walk, alive while ids name them
        self.keys = 0  # > 0 inside a set member or a dict key
        self.risky = False
        self.careful = careful
        self.shared = shared  # buffers whose bytes go beside the message: [SHARED, index]
        self.room = room  # how many may

    def new_id(self) -> int:
        k = self.next_id
        self.next_id = k + 1
        return k

    def register(self, x: object) -> None:
        self.memo[id(x)] = self.next_id
        self.next_id += 1

    def scalar(self, x: object) -> object:
        return x if not self.careful or _plain(x) else leaves.atom(x)  # type: ignore[arg-type]

    def flat(self, items: Any) -> bool:
        """Whether `items` (a collection) are all scalars msgpack holds as they are."""
        for v in items:  # a loop: issuperset(map(...)) would build a set
            if type(v) not in ATOMS:
                return False
        return not self.careful or all(map(_plain, items))

    def value(self, x: object) -> None:
        t = type(x)
        if t in ATOMS:
            self.out.append(self.scalar(x) if self.careful else x)
            return
        handler = _HANDLERS.get(t)
        if handler is None:
            write = leaves.ENCODERS.get(t)
            if write is not None:  # atomic: no id
                try:
                    self.out.append(write(x))
                except Inexpressible as e:
                    raise _Failure(str(e), x) from None
                return
        k = self.memo.get(id(x))
        if k is not None:
            self.ref(k)
            return
        try:  # as _Cloner.compound
            if handler is not None:
                handler(self, x)
            else:
                self.instance(x, classes.info(t))
        except (_Failure, RecursionError, MemoryError):
            raise
        except Exception as e:
            reason = f"cannot clone a {t.__qualname__!r} object: cloning it raised {e!r}"
            raise _Failure(reason, x) from e

    def ref(self, k: int) -> None:
        self.out.append([REF, k])
        if self.pending:
            waiting = self.pending.pop(k, None)
            if waiting is not None:  # a reference back to an exception from its own args
                token, error = waiting
                token[3] = 1
                token.extend(
                    a if type(a) in ATOMS and (not self.careful or _plain(a)) else None
                    for a in error.args
                )

    def items(self, items: Any, segment: Any) -> None:
        out, value, careful = self.out, self.value, self.careful
        i = 0
        try:
            for i, v in enumerate(items):  # noqa: B007 (the handler reads i)
                if type(v) in ATOMS and not careful:
                    out.append(v)
                elif v is _MISSING:
                    out.append([MISSING])
                else:
                    value(v)
        except _Failure as f:
            f.segments.append(segment(i))
            raise

    def close_immutable(self, x: object, k: int, token: list[Any]) -> None:
        """`x` was opened as id `k`: it is that, unless a cycle through it made it inside."""
        done = self.memo.get(id(x))
        if done is None:
            self.memo[id(x)] = k
        else:
            token.append(done)

    def class_index(self, x: object, found: ClassInfo) -> int:
        cls = type(x)
        index = self.classes.get(id(cls))
        if index is None:
            if found.refusal is not None:  # the wire cannot name it
                raise _Failure(found.refusal, x)
            index = self.classes[id(cls)] = len(self.classes)
            self.out.append([CLASS, found.kind, *found.name, *found.fields])
        if found.risky or (self.keys and found.kind != classes.ENUM):
            self.risky = True  # its own code runs to rebuild (or to hash) it
        return index

    def instance(self, x: Any, found: ClassInfo) -> None:
        kind = found.kind
        if kind == classes.FIELDS or kind == classes.FROZEN:
            self.fields(x, found)
        elif kind == classes.NAMEDTUPLE:
            self.named_tuple(x, found)
        elif kind == classes.EXCEPTION:
            self.exception(x, found)
        elif kind == classes.ENUM:
            self.enum_member(x, found)
        elif kind == classes.TRANSFERABLE:
            self.transferable(x)
        else:
            raise _Failure(found.refusal or "", x)  # clone's reason

    def fields(self, x: object, found: ClassInfo) -> None:
        names = found.fields
        originals = [getattr(x, n, _MISSING) for n in names]
        self.keep.append(originals)
        index = self.class_index(x, found)
        frozen = found.kind == classes.FROZEN
        if self.flat(originals):
            self.register(x)
            self.out.append([FROZEN_FLAT if frozen else OBJECT_FLAT, index, *originals])
        elif frozen:
            k, token = self.new_id(), [FROZEN, index]
            self.out.append(token)
            self.items(originals, lambda i: f".{names[i]}")
            self.close_immutable(x, k, token)
        else:
            self.register(x)
            self.out.append([OBJECT, index])
            self.items(originals, lambda i: f".{names[i]}")

    def named_tuple(self, x: tuple[Any, ...], found: ClassInfo) -> None:
        index = self.class_index(x, found)
        if self.flat(x):
            self.register(x)
            self.out.append([NAMEDTUPLE_FLAT, index, *x])
            return
        k, token = self.new_id(), [NAMEDTUPLE, index]
        self.out.append(token)
        self.items(x, lambda i: f".{found.fields[i]}")
        self.close_immutable(x, k, token)

    def exception(self, x: BaseException, found: ClassInfo) -> None:
        """As `_clone._exception`: the type, the args, `__dict__`, then any fields."""
        if found.group and id(x) in self.groups:
            reason = (
                "the wire cannot carry a cycle back to an exception group from inside it "
                "(the receiver makes the group from its members)"
            )
            raise _Failure(reason, x)
        index = self.class_index(x, found)
        attributes = list(x.__dict__.items())
        token: list[Any] = [EXCEPTION, index, len(attributes), 0]
        self.out.append(token)
        k = self.new_id()
        if not found.group:  # a group exists only once its args do (as in clone)
            self.memo[id(x)] = k
            self.pending[k] = (token, x)
        else:
            self.groups.add(id(x))
        try:
            self.value(x.args)
        except _Failure as f:
            f.segments.append(".args")
            raise
        if found.group:
            self.groups.discard(id(x))
            self.memo[id(x)] = k
        else:
            self.pending.pop(k, None)
        name: object = ""
        try:
            for name, v in attributes:
                if type(name) is not str:
                    raise _Failure("the wire cannot carry an attribute named by a non-str", x)
                self.out.append(self.scalar(name))
                if name == "value" and type(x) is DataCloneError:
                    self.value_or_none(v)
                else:
                    self.value(v)
        except _Failure as f:
            f.segments.append(f".{name}")
            raise
        names = found.fields
        originals = [getattr(x, n, _MISSING) for n in names]
        self.keep.append(originals)
        self.items(originals, lambda i: f".{names[i]}")

    def value_or_none(self, x: object) -> None:
        """`x`, or `None` if it cannot be sent (a DataCloneError's value, as clone does)."""
        saved = len(self.out), self.next_id, self.memo.copy(), self.classes.copy()
        pending, groups, risky = self.pending.copy(), self.groups.copy(), self.risky
        try:
            self.value(x)
        except _Failure:
            del self.out[saved[0] :]
            self.next_id, self.memo, self.classes = saved[1:]
            self.pending, self.groups, self.risky = pending, groups, risky
            self.out.append(None)

    def enum_member(self, x: Any, found: ClassInfo) -> None:
        if type(x._value_) not in _clone.ATOMIC:  # clone's rule: shared, so immutable
            _clone._enum_member(_clone._Cloner({}), x)
        cls = type(x)
        index = self.class_index(x, found)
        name = x._name_
        if name is not None and cls.__members__.get(name) is x:
            self.out.append([ENUM, index, name])  # not UTF-8: the careful pass refuses
        elif isinstance(x, enum.Flag) and type(x._value_) is int and _plain(x._value_):
            self.out.append([FLAG, index, x._value_])
        else:
            reason = f"the wire names enum members, and this {cls.__qualname__!r} has no name"
            raise _Failure(reason, x)

    def transferable(self, x: Transferable) -> None:
        i = self.moved.get(id(x))
        if i is not None:
            self.out.append([MOVED, i])
            return
        if type(x) is ArrayBuffer:  # copied, as _clone_untransferred copies it
            if x._data is None:
                raise _Failure("a detached ArrayBuffer cannot be cloned", x)
            self.register(x)
            shared = self.shared
            if shared is not None and len(shared) < self.room and x._memfd() is not None:
                self.out.append([SHARED, len(shared)])
                shared.append(x)
                return
            self.out.append(Ext(leaves.BUFFER, bytes(x._data)))
            return
        try:
            x._clone_untransferred()  # a port: refused, with clone's words
        except DataCloneError as e:
            raise _Failure(e.reason, x) from None
        raise _Failure(f"the wire carries a {type(x).__qualname__!r} only if transferred", x)


def _index(i: int) -> str:
    return f"[{i}]"


def _member(_: int) -> str:
    return " (a set member)"


def _list(e: Encoder, x: list[Any]) -> None:
    e.register(x)
    if e.flat(x):
        e.out.append([LIST_FLAT, *x])
        return
    items = x.copy()
    e.out.append([LIST, len(items)])
    e.items(items, _index)


def _tuple(e: Encoder, x: tuple[Any, ...]) -> None:
    if e.flat(x):
        e.register(x)
        e.out.append([TUPLE_FLAT, *x])
        return
    k, token = e.new_id(), [TUPLE, len(x)]
    e.out.append(token)
    e.items(x, _index)
    e.close_immutable(x, k, token)


def _dict(e: Encoder, x: dict[Any, Any]) -> None:
    e.register(x)
    if _str_keys(x) and (not e.careful or all(map(_plain, x))):
        if e.flat(x.values()):
            e.out.append(x.copy())
            return
        flat: dict[str, object] = {}
        pairs: list[tuple[str, object]] = []
        careful = e.careful
        for k, v in x.items():
            if type(v) in ATOMS and (not careful or _plain(v)):
                flat[k] = v
            else:
                flat[k] = None
                pairs.append((k, v))
        e.out.append([DICT_STR, len(pairs)])
        e.out.append(flat)
        for k, v in pairs:
            e.out.append(k)
            try:
                e.value(v)
            except _Failure as f:
                f.segments.append(f"[{_short(k)}]")
                raise
        return
    items = list(x.items())
    e.out.append([DICT, len(items)])
    for k, v in items:
        try:
            if type(k) in ATOMS:
                e.out.append(e.scalar(k))
            else:
                e.keys += 1
                try:
                    e.value(k)
                finally:
                    e.keys -= 1
            e.value(v)
        except _Failure as f:  # as _clone._dict_general
            f.segments.append(f" (a key: {_short(k)})" if f.value is k else f"[{_short(k)}]")
            raise


def _str_keys(x: dict[Any, Any]) -> bool:
    for k in x:  # noqa: SIM110 (faster than all() over a generator)
        if type(k) is not str:
            return False
    return True


def _set(e: Encoder, x: set[Any]) -> None:
    e.register(x)
    if e.flat(x):
        e.out.append([SET_FLAT, *x])
        return
    items = list(x)
    e.out.append([SET, len(items)])
    e.keys += 1
    try:
        e.items(items, _member)
    finally:
        e.keys -= 1


def _frozenset(e: Encoder, x: frozenset[Any]) -> None:
    if e.flat(x):
        e.register(x)
        e.out.append([FROZENSET_FLAT, *x])
        return
    k, token = e.new_id(), [FROZENSET, len(x)]
    e.out.append(token)
    e.keys += 1
    try:
        e.items(list(x), _member)
    finally:
        e.keys -= 1
    e.close_immutable(x, k, token)


def _bytearray(e: Encoder, x: bytearray) -> None:
    e.register(x)
    e.out.append(Ext(leaves.BYTEARRAY, bytes(x)))


_HANDLERS: Final[dict[type, Any]] = {
    list: _list,
    tuple: _tuple,
    dict: _dict,
    set: _set,
    frozenset: _frozenset,
    bytearray: _bytearray,
}
