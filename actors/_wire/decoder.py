"""The receiving half of the codec: the stack machine that rebuilds a message from tokens.

Bounded: it never recurses, never preallocates from a count it read, and charges the hashing
of set members and dict keys (which shared tuples could make exponential, and crafted values
could make collide) to a budget proportional to the frame's size.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Final, cast

from msgspec.msgpack import Ext

from .. import _clone
from .._clone import _MISSING, _short
from . import classes, leaves
from .classes import ClassInfo
from .containers import (
    NOTHING,
    Bad,
    Open,
    OpenDict,
    OpenException,
    OpenFields,
    OpenImmutable,
    OpenList,
    OpenSet,
    OpenStrDict,
    add_all,
    arity,
    count,
    index_segment,
    member_segment,
)

__all__ = ["Malformed", "Rebuild"]


class Malformed(Exception):
    """What was wrong with a frame, and where (the codec raises it as its DecodeError)."""

    def __init__(self, reason: str, path: str) -> None:
        super().__init__(reason, path)
        self.reason = reason
        self.path = path


_PENDING: Final = object()  # the value of an id whose container is not closed yet
_HASH_BUDGET_PER_BYTE: Final = 32
_HASH_BUDGET_MIN: Final = 1 << 16
_SAME_HASH_LIMIT: Final = 32  # keys of one set or dict with one hash (only crafted ones do)
_EXT_NAMES: Final = {
    getattr(leaves, name): name
    for name in dir(leaves)
    if name.isupper() and name.isalpha() and type(getattr(leaves, name)) is int
}


class Rebuild:
    """The stack machine: one frame's tokens in, one message out."""

    __slots__ = ("budget", "classes", "costs", "memo", "shared", "stack", "transferred")

    def __init__(
        self, transferred: Sequence[object], size: int, shared: Sequence[object] = ()
    ) -> None:
        self.transferred = transferred
        self.shared = shared
        self.memo: list[object] = []  # values by id
        self.classes: list[tuple[type, ClassInfo]] = []
        self.stack: list[Open] = []
        self.costs: dict[int, int] = {}  # id(tuple-like) -> what hashing it costs
        self.budget = _HASH_BUDGET_PER_BYTE * size + _HASH_BUDGET_MIN

    def run(self, tokens: Sequence[object]) -> object:
        stack, memo = self.stack, self.memo
        result: object = NOTHING
        try:
            for token in tokens:
                t = type(token)
                if t is list:
                    value = self.instruction(token)  # type: ignore[arg-type]
                    if value is NOTHING:
                        continue
                elif t is dict:
                    memo.append(token)
                    value = token
                elif t is Ext:
                    value = self.leaf(token)  # type: ignore[arg-type]
                else:
                    value = token
                while stack:
                    if not stack[-1].take(value, self):
                        break
                    value = stack.pop().close(self)
                else:
                    if result is not NOTHING:
                        raise Bad("the frame holds more than one message")
                    result = value
            if stack:
                raise Bad(f"the frame ends inside {stack[-1].what}")
            if result is NOTHING:
                raise Bad("the frame holds no message")
        except Bad as e:
            raise Malformed(str(e), self.path()) from None
        except Exception as e:  # a class's own code, a constructor refusing its arguments
            raise Malformed(f"rebuilding it raised {e!r}", self.path()) from e
        return result

    def path(self) -> str:
        return "message" + "".join(open_.where() for open_ in self.stack)

    # -- tokens ---------------------------------------------------------------------------------

    def leaf(self, ext: Ext) -> object:
        read = leaves.READERS.get(ext.code)
        if read is None:
            raise Bad(f"unknown extension code {ext.code}")
        try:
            value = read(cast(bytes, ext.data))
        except Exception as e:
            raise Bad(f"a malformed {_EXT_NAMES[ext.code]} extension ({e})") from None
        if ext.code == leaves.BYTEARRAY or ext.code == leaves.BUFFER:
            self.memo.append(value)
        return value

    def instruction(self, token: list[Any]) -> object:
        if not token or type(token[0]) is not int or not 0 <= token[0] < len(_INSTRUCTIONS):
            raise Bad(f"not an instruction: {_short(token)}")
        return _INSTRUCTIONS[token[0]](self, token)

    def open(self, container: Open) -> object:
        if container.left == 0:
            return container.close(self)
        self.stack.append(container)
        return NOTHING

    def reserve(self) -> int:
        self.memo.append(_PENDING)
        return len(self.memo) - 1

    def done(self, k: object, what: str) -> object:
        """The value of id `k`, which must be complete."""
        if type(k) is not int or not 0 <= k < len(self.memo):
            raise Bad(f"{what} {_short(k)} is not an id of this frame")
        value = self.memo[k]
        if value is _PENDING:
            raise Bad(f"{what} {k} is a value still being built")
        return value

    def cls(self, index: object, *kinds: int) -> tuple[Any, ClassInfo]:
        if type(index) is not int or not 0 <= index < len(self.classes):
            raise Bad(f"class {_short(index)} is not defined in this frame")
        found = self.classes[index]
        if found[1].kind not in kinds:
            raise Bad(f"class {found[0].__qualname__} is not {classes.KIND_NAMES[kinds[0]]}")
        return found

    def cost(self, value: object) -> int:
        return self.costs.get(id(value), 1)

    def charge(self, cost: int) -> None:
        self.budget -= cost
        if self.budget < 0:
            raise Bad("hashing its keys would take too long (keys shared too often)")

    def key(self, counts: dict[int, int], key: object) -> None:
        """Charge the hashing of `key` into a set or dict (and the comparisons of keys that
        hash alike); refuse one hash shared by too many keys (crafted to collide)."""
        if type(key) is str:  # str hashes are salted: nobody can make them collide
            return
        cost = self.cost(key)
        self.charge(cost)
        h = hash(key)
        n = counts.get(h, 0) + 1
        if n > _SAME_HASH_LIMIT:
            raise Bad("too many keys with the same hash")
        counts[h] = n
        self.charge(cost * (n - 1))

    def fill(self, obj: object, names: tuple[str, ...], items: list[Any]) -> object:
        if len(items) != len(names):
            raise Bad(f"{len(items)} field values for {len(names)} fields")
        _clone._fill(obj, names, items)
        return obj

    def tuple_cost(self, value: object, items: Any) -> None:
        self.costs[id(value)] = 1 + sum(map(self.cost, items))


# -- instructions --------------------------------------------------------------------------------


def _ref(r: Rebuild, token: list[Any]) -> object:
    arity(token, 2, 2)
    return r.done(token[1], "REF")


def _moved(r: Rebuild, token: list[Any]) -> object:
    arity(token, 2, 2)
    i = token[1]
    if type(i) is not int or not 0 <= i < len(r.transferred):
        raise Bad(f"MOVED {_short(i)}: {len(r.transferred)} objects were transferred")
    return r.transferred[i]


def _shared(r: Rebuild, token: list[Any]) -> object:
    arity(token, 2, 2)
    i = token[1]
    if type(i) is not int or not 0 <= i < len(r.shared):
        raise Bad(f"SHARED {_short(i)}: {len(r.shared)} buffers came beside the message")
    value = r.shared[i]
    r.memo.append(value)
    return value


def _missing(r: Rebuild, token: list[Any]) -> object:
    arity(token, 1, 1)
    if not r.stack or not r.stack[-1].takes_missing():
        raise Bad("MISSING (an unset attrs slot) is only a field's value")
    return _MISSING


def _class(r: Rebuild, token: list[Any]) -> object:
    if len(token) < 4 or type(token[1]) is not int:
        raise Bad(f"not a CLASS instruction: {_short(token)}")
    kind, module, qualname = token[1:4]
    if type(module) is not str or type(qualname) is not str:
        raise Bad(f"not a CLASS instruction: {_short(token)}")
    try:
        cls, found = classes.resolve(module, qualname)
    except LookupError as e:
        raise Bad(str(e.args[0])) from None
    if found.kind != kind or found.refusal is not None:
        what = found.refusal or f"it is {classes.KIND_NAMES[found.kind]} here"
        said = classes.KIND_NAMES[kind] if 0 <= kind < len(classes.KIND_NAMES) else f"kind {kind}"
        raise Bad(f"class {module}.{qualname} was sent as {said}, but {what}")
    if tuple(token[4:]) != found.fields:
        raise Bad(f"class {module}.{qualname} has fields {found.fields} here, not {token[4:]}")
    r.classes.append((cls, found))
    return NOTHING


def _enum(r: Rebuild, token: list[Any]) -> object:
    arity(token, 3, 3)
    cls, _ = r.cls(token[1], classes.ENUM)
    member = cls.__members__.get(token[2]) if type(token[2]) is str else None
    if type(member) is not cls:
        raise Bad(f"{cls.__qualname__} has no member {_short(token[2])} here")
    return member


def _flag(r: Rebuild, token: list[Any]) -> object:
    arity(token, 3, 3)
    cls, _ = r.cls(token[1], classes.ENUM)
    if not issubclass(cls, enum.Flag) or type(token[2]) is not int:
        raise Bad(f"FLAG {_short(token[2])} of {cls.__qualname__}, which is not a Flag")
    member = cls(token[2])
    if type(member) is not cls:
        raise Bad(f"{cls.__qualname__}({token[2]}) is not a member")
    return member


def _list(r: Rebuild, token: list[Any]) -> object:
    arity(token, 2, 2)
    container = OpenList(count(token, 1))
    r.memo.append(container.items)
    return r.open(container)


def _list_flat(r: Rebuild, token: list[Any]) -> object:
    del token[0]
    r.memo.append(token)
    return token


def _make_tuple(r: Rebuild, items: list[Any]) -> tuple[Any, ...]:
    value = tuple(items)
    r.tuple_cost(value, value)
    return value


def _tuple(r: Rebuild, token: list[Any]) -> object:
    n = count(token, 1)
    return r.open(OpenImmutable(r, token, n, tuple, _make_tuple, index_segment))


def _tuple_flat(r: Rebuild, token: list[Any]) -> object:
    del token[0]
    value = tuple(token)
    r.memo.append(value)
    if len(value) > 8:
        r.costs[id(value)] = 1 + len(value)
    return value


def _dict(r: Rebuild, token: list[Any]) -> object:
    arity(token, 2, 2)
    new: dict[Any, Any] = {}
    r.memo.append(new)
    return r.open(OpenDict(count(token, 1), new))


def _dict_str(r: Rebuild, token: list[Any]) -> object:
    arity(token, 2, 2)
    container = OpenStrDict(count(token, 1), None)  # type: ignore[arg-type]
    container.left += 1  # the map
    return r.open(container)


def _set(r: Rebuild, token: list[Any]) -> object:
    arity(token, 2, 2)
    new: set[Any] = set()
    r.memo.append(new)
    return r.open(OpenSet(count(token, 1), new))


def _set_flat(r: Rebuild, token: list[Any]) -> object:
    del token[0]
    new = set(token)  # scalars: their hashes are salted (str) or collide a few at most
    r.memo.append(new)
    return new


def _make_frozenset(r: Rebuild, items: list[Any]) -> frozenset[Any]:
    return frozenset(add_all(r, set(), items))


def _frozenset(r: Rebuild, token: list[Any]) -> object:
    n = count(token, 1)
    return r.open(OpenImmutable(r, token, n, frozenset, _make_frozenset, member_segment))


def _frozenset_flat(r: Rebuild, token: list[Any]) -> object:
    del token[0]
    new = frozenset(token)
    r.memo.append(new)
    return new


def _object(r: Rebuild, token: list[Any]) -> object:
    arity(token, 2, 2)
    cls, found = r.cls(token[1], classes.FIELDS)
    obj = cls.__new__(cls)
    r.memo.append(obj)
    return r.open(OpenFields(obj, found.fields))


def _object_flat(r: Rebuild, token: list[Any]) -> object:
    cls, found = r.cls(token[1] if len(token) > 1 else None, classes.FIELDS)
    obj = r.fill(cls.__new__(cls), found.fields, token[2:])
    r.memo.append(obj)
    return obj


def _building(cls: Any, names: tuple[str, ...]) -> Any:
    def build(r: Rebuild, items: list[Any]) -> object:
        value = r.fill(cls.__new__(cls), names, items)
        r.tuple_cost(value, items)  # a frozen class hashes (if at all) the tuple of its fields
        return value

    return build


def _frozen(r: Rebuild, token: list[Any]) -> object:
    cls, found = r.cls(token[1] if len(token) > 1 else None, classes.FROZEN)
    make = _building(cls, found.fields)
    segment = _field_segment(found.fields)
    return r.open(OpenImmutable(r, token, len(found.fields), cls, make, segment))


def _frozen_flat(r: Rebuild, token: list[Any]) -> object:
    cls, found = r.cls(token[1] if len(token) > 1 else None, classes.FROZEN)
    value = _building(cls, found.fields)(r, token[2:])
    r.memo.append(value)
    return value


def _field_segment(names: tuple[str, ...]) -> Any:
    return lambda i: f".{names[i]}"


def _named_tuple_of(cls: Any, size: int) -> Any:
    def make(r: Rebuild, items: list[Any]) -> object:
        if len(items) != size:
            raise Bad(f"{len(items)} items for a {cls.__qualname__} of {size} fields")
        value: tuple[Any, ...] = tuple.__new__(cls, items)
        r.tuple_cost(value, items)
        return value

    return make


def _named_tuple(r: Rebuild, token: list[Any]) -> object:
    cls, found = r.cls(token[1] if len(token) > 1 else None, classes.NAMEDTUPLE)
    size = len(found.fields)
    make = _named_tuple_of(cls, size)
    return r.open(OpenImmutable(r, token, size, cls, make, _field_segment(found.fields)))


def _named_tuple_flat(r: Rebuild, token: list[Any]) -> object:
    cls, found = r.cls(token[1] if len(token) > 1 else None, classes.NAMEDTUPLE)
    value = _named_tuple_of(cls, len(found.fields))(r, token[2:])
    r.memo.append(value)
    return value


def _exception(r: Rebuild, token: list[Any]) -> object:
    if len(token) < 4 or token[3] not in (0, 1) or type(token[3]) is not int:
        raise Bad(f"not an EXCEPTION instruction: {_short(token)}")
    cls, found = r.cls(token[1], classes.EXCEPTION)
    container = OpenException(r, cls, found.fields, count(token, 2))
    if token[3]:  # early: a reference back to it sits in its args
        if found.group:
            raise Bad("an exception group is made from its args, never before them")
        new = cls.__new__(cls, *token[4:])
        if not isinstance(new, cls):
            raise Bad(f"{cls.__qualname__}.__new__ made a {type(new).__qualname__}")
        r.memo[container.slot] = container.obj = new
    elif len(token) != 4:
        raise Bad("an EXCEPTION has scalar args only when made early")
    return r.open(container)


_INSTRUCTIONS: Final[tuple[Any, ...]] = (
    _ref,
    _moved,
    _missing,
    _class,
    _enum,
    _flag,
    _list,
    _list_flat,
    _tuple,
    _tuple_flat,
    _dict,
    _dict_str,
    _set,
    _set_flat,
    _frozenset,
    _frozenset_flat,
    _object,
    _object_flat,
    _frozen,
    _frozen_flat,
    _named_tuple,
    _named_tuple_flat,
    _exception,
    _shared,
)
"""By opcode (`opcodes.py`): each makes a value, opens a container, or defines a class."""
