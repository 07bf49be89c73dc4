"""Containers the decoder is filling: each takes the values of the next tokens as children."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .._clone import _short
from . import opcodes as op

if TYPE_CHECKING:
    from .decoder import Rebuild

__all__ = [
    "NOTHING",
    "Bad",
    "Open",
    "OpenDict",
    "OpenException",
    "OpenFields",
    "OpenImmutable",
    "OpenList",
    "OpenSet",
    "OpenStrDict",
    "add_all",
    "arity",
    "count",
    "index_segment",
    "member_segment",
]

NOTHING: Final = object()  # no value (yet)


class Bad(Exception):
    """Malformed input, found by the stack machine (which knows where)."""


def arity(token: list[Any], low: int, high: int) -> None:
    if not low <= len(token) <= high:
        raise Bad(f"an instruction of the wrong length: {_short(token)}")


def count(token: list[Any], i: int) -> int:
    n = token[i]
    if type(n) is not int or n < 0:
        raise Bad(f"not a count: {_short(n)}")
    return n


class Open:
    """A container whose children are the values of the next tokens."""

    __slots__ = ("left",)
    what = "a container"
    left: int

    def take(self, value: object, r: Rebuild) -> bool:
        """Add the next child; whether that was the last one."""
        raise NotImplementedError

    def close(self, r: Rebuild) -> object:
        raise NotImplementedError

    def where(self) -> str:
        """The path segment of the child being taken."""
        raise NotImplementedError

    def takes_missing(self) -> bool:
        return False


class OpenList(Open):
    __slots__ = ("items",)
    what = "a list"

    def __init__(self, n: int) -> None:
        self.left = n
        self.items: list[object] = []

    def take(self, value: object, r: Rebuild) -> bool:
        self.items.append(value)
        self.left -= 1
        return self.left == 0

    def close(self, r: Rebuild) -> object:
        return self.items

    def where(self) -> str:
        return f"[{len(self.items)}]"


class OpenImmutable(OpenList):
    """A tuple, frozenset, named tuple or frozen fields class: made once its items are."""

    __slots__ = ("alias", "fields", "kind", "make", "segment", "slot")
    what = "an immutable container"

    def __init__(
        self, r: Rebuild, token: list[Any], n: int, kind: type, make: Any, segment: Any
    ) -> None:
        arity(token, 2, 3)
        self.left, self.items = n, []
        self.kind, self.make, self.segment = kind, make, segment
        self.alias = token[2] if len(token) == 3 else None
        self.fields = bool(token[0] == op.FROZEN)
        self.slot = r.reserve()

    def close(self, r: Rebuild) -> object:
        if self.alias is None:
            value = self.make(r, self.items)
        else:  # a cycle through this container made it inside: this is that one
            value = r.done(self.alias, "alias")
            if type(value) is not self.kind:
                raise Bad(f"alias {self.alias} is not a {self.kind.__qualname__}")
        r.memo[self.slot] = value
        return value

    def where(self) -> str:
        segment: str = self.segment(len(self.items))
        return segment

    def takes_missing(self) -> bool:
        return self.fields


class OpenSet(OpenList):
    __slots__ = ("set",)
    what = "a set"

    def __init__(self, n: int, new: set[Any]) -> None:
        self.left, self.items = n, []
        self.set: set[Any] = new

    def close(self, r: Rebuild) -> object:  # as clone: filled once every member is made
        add_all(r, self.set, self.items)
        return self.set

    def where(self) -> str:
        return " (a set member)"


class OpenFields(OpenList):
    __slots__ = ("names", "obj")
    what = "an attrs or dataclass instance"

    def __init__(self, obj: object, names: tuple[str, ...]) -> None:
        self.left, self.items = len(names), []
        self.obj, self.names = obj, names

    def close(self, r: Rebuild) -> object:
        return r.fill(self.obj, self.names, self.items)

    def where(self) -> str:
        return f".{self.names[len(self.items)]}"

    def takes_missing(self) -> bool:
        return True


class OpenDict(Open):
    __slots__ = ("counts", "dict", "key")
    what = "a dict"

    def __init__(self, n: int, new: dict[Any, Any]) -> None:
        self.left, self.key = 2 * n, NOTHING
        self.dict: Any = new
        self.counts: dict[int, int] = {}

    def take(self, value: object, r: Rebuild) -> bool:
        if self.key is NOTHING:
            self.key = value
        else:
            r.key(self.counts, self.key)
            self.dict[self.key] = value
            self.key = NOTHING
        self.left -= 1
        return self.left == 0

    def close(self, r: Rebuild) -> object:
        return self.dict

    def where(self) -> str:
        return " (a key)" if self.key is NOTHING else f"[{_short(self.key)}]"


class OpenStrDict(OpenDict):
    """DICT_STR: its map first (the dict itself), then values for some of its keys."""

    def take(self, value: object, r: Rebuild) -> bool:
        if self.dict is None:
            if type(value) is not dict or not r.memo or value is not r.memo[-1]:
                raise Bad("a DICT_STR starts with a map")
            self.dict = value
        elif self.key is NOTHING:
            if type(value) is not str or value not in self.dict:
                raise Bad(f"{_short(value)} is not a key of the map before it")
            self.key = value
        else:
            self.dict[self.key] = value
            self.key = NOTHING
        self.left -= 1
        return self.left == 0


class OpenException(Open):
    """Its args (a tuple), `n` attribute names and values, then its fields."""

    __slots__ = ("args_done", "attributes", "cls", "fields", "name", "names", "obj", "slot")
    what = "an exception"

    def __init__(self, r: Rebuild, cls: Any, names: tuple[str, ...], n: int) -> None:
        self.cls, self.names, self.slot = cls, names, r.reserve()
        self.obj: Any = None
        self.args_done = False
        self.left = 1 + 2 * n + len(names)
        self.attributes: dict[str, object] = {}
        self.fields: list[object] = []
        self.name: object = NOTHING

    def take(self, value: object, r: Rebuild) -> bool:
        if not self.args_done:
            self.take_args(value, r)
        elif self.left > len(self.names):
            if self.name is NOTHING:
                if type(value) is not str:
                    raise Bad("an attribute name is a str")
                self.name = value
            else:
                self.attributes[self.name] = value  # type: ignore[index]
                self.name = NOTHING
        else:
            self.fields.append(value)
        self.left -= 1
        return self.left == 0

    def take_args(self, args: object, r: Rebuild) -> None:
        if type(args) is not tuple:
            raise Bad("an exception's args are a tuple")
        if self.obj is None:
            new = self.cls.__new__(self.cls, *args)
            if not isinstance(new, self.cls):
                raise Bad(f"{self.cls.__qualname__}.__new__ made a {type(new).__qualname__}")
            r.memo[self.slot] = self.obj = new
        self.obj.args = args
        self.args_done = True

    def close(self, r: Rebuild) -> object:
        if self.attributes:
            self.obj.__dict__.update(self.attributes)
        return r.fill(self.obj, self.names, self.fields)

    def where(self) -> str:
        if not self.args_done:
            return ".args"
        if self.left > len(self.names):
            return " (an attribute name)" if self.name is NOTHING else f".{self.name}"
        return f".{self.names[len(self.fields)]}"

    def takes_missing(self) -> bool:
        return self.args_done and self.left <= len(self.names)


def add_all(r: Rebuild, new: set[Any], items: list[Any]) -> set[Any]:
    counts: dict[int, int] = {}
    for item in items:
        r.key(counts, item)
        new.add(item)
    return new


def index_segment(i: int) -> str:
    return f"[{i}]"


def member_segment(_: int) -> str:
    return " (a set member)"
