"""Structured clone: a fresh copy of a message's object graph, with a transfer list.

The receiver's copy shares nothing mutable with the sender's graph. Immutable values (`str`,
`int`, `bytes`, tuples and frozen attrs/dataclass instances of immutables, ...) are shared
instead of copied: nobody can observe the difference, and it keeps the hot path cheap.
Cycles and shared references are preserved through a memo keyed by `id`.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import pathlib
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar, cast

import attrs

from ._exceptions import DataCloneError
from ._owner import CURRENT
from ._transfer import Transferable

__all__ = [
    "clone",
    "clone_replacing",
    "commit",
    "serialize",
    "serialize_moving_all",
    "structured_clone",
    "transfer_list",
]

T = TypeVar("T")

# Exact types whose instances are immutable and hold nothing mutable: shared, never copied.
ATOMIC: Final[frozenset[type]] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        decimal.Decimal,
        uuid.UUID,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        range,
        pathlib.PurePath,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.Path,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    }
)


class _Missing:
    """An attrs slot that was never set: rebuilt unset, never seen by users."""


_MISSING: Final = _Missing()


class _Failure(Exception):
    """Raised inside the cloner; carries the path segments collected while unwinding.

    Its `__cause__` is the exception user code raised, if that is what stopped the clone.
    """

    def __init__(self, reason: str, value: object) -> None:
        self.reason = reason
        self.value = value
        self.segments: list[str] = []


Handler = Callable[["_Cloner", Any], Any]


class _Cloner:
    __slots__ = ("memo", "moves")

    def __init__(
        self,
        memo: dict[int, object],
        moves: list[tuple[Transferable, Transferable]] | None = None,
    ) -> None:
        self.memo = memo
        self.moves = moves  # not None: transfer every transferable met (spawn's arguments)

    def clone(self, x: object) -> object:
        if type(x) in ATOMIC:
            return x
        return self.compound(x)

    def compound(self, x: object) -> object:
        """Clone `x`, known not to be of an ATOMIC type (containers check that inline)."""
        done = self.memo.get(id(x))
        if done is not None:
            return done
        cls = type(x)
        try:  # free unless something raises
            handler = _HANDLERS.get(cls)
            if handler is None:
                handler = _CLASS_HANDLERS.get(id(cls))
                if handler is None:
                    handler = _register(cls)
            return handler(self, x)
        except (_Failure, RecursionError, MemoryError):
            raise
        except Exception as e:  # user code (a hash, an __eq__, a __new__, a property) raised
            reason = f"cannot clone a {cls.__qualname__!r} object: cloning it raised {e!r}"
            raise _Failure(reason, x) from e


def _list(c: _Cloner, x: list[Any]) -> list[Any]:
    # Copy in C, then replace only what is not atomic: most items of most messages are atomic.
    new = x.copy()
    c.memo[id(x)] = new
    compound, atomic = c.compound, ATOMIC
    i = 0
    try:
        for i, v in enumerate(x):
            if type(v) not in atomic:
                new[i] = compound(v)
    except _Failure as f:
        f.segments.append(f"[{i}]")
        raise
    return new


def _dict(c: _Cloner, x: dict[Any, Any]) -> dict[Any, Any]:
    new = x.copy()  # as _list; a key that is not atomic sends us to the general loop
    c.memo[id(x)] = new
    compound, atomic = c.compound, ATOMIC
    k: object = None
    try:
        for k, v in x.items():
            if type(k) not in atomic:
                break
            if type(v) not in atomic:
                new[k] = compound(v)
        else:
            return new
    except _Failure as f:
        f.segments.append(f"[{_short(k)}]")
        raise
    return _dict_general(c, x, new)


def _dict_general(c: _Cloner, x: dict[Any, Any], new: dict[Any, Any]) -> dict[Any, Any]:
    new.clear()
    compound, atomic = c.compound, ATOMIC
    k: object = None
    try:
        for k, v in x.items():
            new[k if type(k) in atomic else compound(k)] = v if type(v) in atomic else compound(v)
    except _Failure as f:
        f.segments.append(f" (a key: {_short(k)})" if f.value is k else f"[{_short(k)}]")
        raise
    return new


def _clone_items(c: _Cloner, x: Iterable[Any], segment: Callable[[int], str]) -> list[Any]:
    items: list[Any] = []
    append, compound, atomic = items.append, c.compound, ATOMIC
    try:
        for v in x:
            append(v if type(v) in atomic else compound(v))
    except _Failure as f:
        f.segments.append(segment(len(items)))
        raise
    return items


def _index(i: int) -> str:
    return f"[{i}]"


def _member(_: int) -> str:
    return " (a set member)"


def _share_or(
    c: _Cloner, x: T, items: list[Any], originals: Iterable[Any], make: Callable[[], T]
) -> T:
    """`x` itself when every item cloned to itself (nothing mutable inside), else `make()`."""
    done = c.memo.get(id(x))  # a cycle through a mutable child already made the copy
    if done is not None:
        return done  # type: ignore[return-value]
    result = x if all(a is b for a, b in zip(items, originals, strict=True)) else make()
    c.memo[id(x)] = result
    return result


def _tuple(c: _Cloner, x: tuple[Any, ...]) -> tuple[Any, ...]:
    atomic = ATOMIC
    for v in x:
        if type(v) not in atomic:
            break
    else:
        return x
    items = _clone_items(c, x, _index)
    return _share_or(c, x, items, x, lambda: tuple(items))


def _frozenset(c: _Cloner, x: frozenset[Any]) -> frozenset[Any]:
    items = _clone_items(c, x, _member)
    return _share_or(c, x, items, x, lambda: frozenset(items))


def _set(c: _Cloner, x: set[Any]) -> set[Any]:
    new: set[Any] = set()
    c.memo[id(x)] = new
    new.update(_clone_items(c, x, _member))
    return new


def _bytearray(c: _Cloner, x: bytearray) -> bytearray:
    new = bytearray(x)
    c.memo[id(x)] = new
    return new


def _shared(c: _Cloner, x: object) -> object:
    return x


def _transferable(c: _Cloner, x: Transferable) -> object:
    # Listed transferables are in the memo already (mapped to their shells); this one is not.
    if c.moves is not None:
        reason = x._transfer_refusal()
        if reason is not None:
            raise _Failure(reason, x)
        shell = x._transfer_shell()
        c.moves.append((x, shell))
        c.memo[id(x)] = shell
        return shell
    try:
        new = x._clone_untransferred()
    except DataCloneError as e:
        raise _Failure(e.reason, x) from None
    c.memo[id(x)] = new
    return new


def _exception(c: _Cloner, x: BaseException) -> BaseException:
    """As the standard clones Error objects: the same type, with cloned `args`."""
    cls = type(x)
    new: BaseException | None = None
    if not issubclass(cls, BaseExceptionGroup):  # a group's members are fixed by __new__
        try:  # from the original args, which some types parse here (OSError's errno, ...)
            new = cls.__new__(cls, *x.args)
        except Exception:
            new = None
        else:
            c.memo[id(x)] = new  # before the args, so a cycle back here finds this copy
    try:
        args = cast(tuple[Any, ...], c.clone(x.args))
    except _Failure as f:
        f.segments.append(".args")
        raise
    if new is None:
        try:
            new = cls.__new__(cls, *args)
        except Exception as e:
            raise _Failure(f"cannot rebuild {cls.__qualname__} from its args ({e!r})", x) from None
        c.memo[id(x)] = new
    new.args = args
    attributes = x.__dict__
    if attributes:
        new.__dict__.update(_clone_attributes(c, x, attributes))
    return new


def _clone_attributes(c: _Cloner, x: BaseException, attributes: dict[str, Any]) -> dict[str, Any]:
    """An exception's instance attributes (`__notes__` too), cloned; `.name` in error paths."""
    cloned: dict[str, Any] = {}
    name = ""
    try:
        for name, value in attributes.items():
            if type(value) in ATOMIC:
                cloned[name] = value
            elif name == "value" and type(x) is DataCloneError:
                cloned[name] = _clone_or_none(c, value)  # often uncloneable, by definition
            else:
                cloned[name] = c.compound(value)
    except _Failure as f:
        f.segments.append(f".{name}")
        raise
    return cloned


def _clone_or_none(c: _Cloner, value: object) -> object:
    """The clone of `value`, or `None` if it cannot be cloned; a failure leaves `c` as it was
    (no half-made copy in its memo for another reference to `value` to pick up)."""
    moves = None if c.moves is None else c.moves.copy()
    trial = _Cloner(c.memo.copy(), moves)
    try:
        new = trial.compound(value)
    except _Failure:
        return None
    c.memo.update(trial.memo)
    if c.moves is not None and moves is not None:
        c.moves[:] = moves
    return new


def _namedtuple(c: _Cloner, x: Any) -> Any:
    items = _clone_items(c, x, lambda i: f".{x._fields[i]}")
    return _share_or(c, x, items, x, lambda: x._make(items))


def _fields_handler(names: tuple[str, ...], frozen: bool) -> Handler:
    """Clone an attrs or dataclass instance: a new instance (no `__init__`), fields cloned."""

    def clone_fields(c: _Cloner, x: Any) -> Any:
        cls: Any = type(x)
        originals = [getattr(x, n, _MISSING) for n in names]
        if frozen:
            items = _clone_items(c, originals, lambda i: f".{names[i]}")
            return _share_or(c, x, items, originals, lambda: _build(cls, names, items))
        new = cls.__new__(cls)
        c.memo[id(x)] = new
        items = _clone_items(c, originals, lambda i: f".{names[i]}")
        _fill(new, names, items)
        return new

    return clone_fields


def _build(cls: type[T], names: tuple[str, ...], items: list[Any]) -> T:
    new: T = cast(Any, cls).__new__(cls)
    _fill(new, names, items)
    return new


def _fill(new: object, names: tuple[str, ...], items: list[Any]) -> None:
    for name, value in zip(names, items, strict=True):
        if value is not _MISSING:
            object.__setattr__(new, name, value)


def _field_names(cls: type) -> tuple[str, ...]:
    """The fields of an attrs class or a dataclass; `()` for any other class."""
    if attrs.has(cls):
        return tuple(a.name for a in attrs.fields(cls))
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return ()


def _exception_with_fields(names: tuple[str, ...]) -> Handler:
    """An exception that is also an attrs class or dataclass: its args and its fields."""

    def clone_exception(c: _Cloner, x: BaseException) -> BaseException:
        new = _exception(c, x)
        originals = [getattr(x, n, _MISSING) for n in names]
        _fill(new, names, _clone_items(c, originals, lambda i: f".{names[i]}"))
        return new

    return clone_exception


def _enum_member(c: _Cloner, x: enum.Enum) -> enum.Enum:
    """Enum members are shared (`is` keeps working), so only one whose value is immutable all
    the way down (it clones to itself): else the receiver would share that value."""
    value = x._value_
    if type(value) in ATOMIC:
        return x
    what = f"cannot clone a {type(x).__qualname__!r} enum member: members are shared by identity"
    try:
        same = c.compound(value) is value
    except _Failure as f:
        raise _Failure(f"{what}, and its value cannot be cloned ({f.reason})", x) from None
    if not same:
        raise _Failure(
            f"{what}, so its mutable value {_short(value)} would be shared with the receiver", x
        )
    return x


def _refuse(reason: str) -> Handler:
    def refuse(c: _Cloner, x: object) -> object:
        raise _Failure(reason, x)

    return refuse


# Objects of these packages are live machinery (tasks, scopes, locks, sockets), never data,
# even when their classes happen to be attrs classes (trio.Event, trio.CancelScope).
_RUNTIME_MODULES: Final = frozenset(
    {"trio", "outcome", "threading", "_thread", "asyncio", "socket", "ssl", "selectors"}
)

_BUILTIN_BASES: Final = frozenset({dict, list, tuple, set, frozenset, bytearray, *ATOMIC})

# The built-in containers, for ever (and checked first: the hot path is one lookup).
_HANDLERS: dict[type, Handler] = {
    list: _list,
    dict: _dict,
    tuple: _tuple,
    set: _set,
    frozenset: _frozenset,
    bytearray: _bytearray,
    _Missing: _shared,
}


# Every other class met, by `id`, while it lives: a handler never refers to its class, and
# the weak reference's callback removes the entry as the class dies (before its id can be
# reused), so classes made at run time (named tuples, dataclasses, ...) can be collected.
_CLASS_HANDLERS: dict[int, Handler] = {}
_CLASS_REFS: dict[int, weakref.KeyedRef[int, type]] = {}


def _forget(
    ref: weakref.KeyedRef[int, type],
    handlers: dict[int, Handler] = _CLASS_HANDLERS,  # bound now: a class may die at shutdown
    refs: dict[int, weakref.KeyedRef[int, type]] = _CLASS_REFS,
) -> None:
    handlers.pop(ref.key, None)
    refs.pop(ref.key, None)


def _register(cls: type) -> Handler:
    """Decide how instances of `cls` are cloned, and remember it while `cls` lives."""
    handler = _handler_for(cls)
    key = id(cls)
    _CLASS_REFS[key] = weakref.KeyedRef(cls, _forget, key)
    _CLASS_HANDLERS[key] = handler
    return handler


def _handler_for(cls: type) -> Handler:
    """Decide once per type how its instances are cloned (cached by `_register`)."""
    name = cls.__qualname__
    # Exceptions and enum members are data whichever module defines them (trio's errors,
    # socket.AF_INET); other objects of runtime modules are live machinery.
    if issubclass(cls, Exception):
        fields = _field_names(cls)
        return _exception if not fields else _exception_with_fields(fields)
    if issubclass(cls, enum.Enum):
        return _enum_member
    if cls.__module__.partition(".")[0] in _RUNTIME_MODULES:
        return _refuse(f"cannot clone a {name!r} object: it belongs to a running program")
    if issubclass(cls, Transferable):
        return _transferable
    if attrs.has(cls):
        frozen = getattr(cls.__setattr__, "__name__", "") == "_frozen_setattrs"
        return _fields_handler(_field_names(cls), frozen)
    if dataclasses.is_dataclass(cls):
        frozen = bool(cls.__dataclass_params__.frozen)  # type: ignore[attr-defined]
        return _fields_handler(_field_names(cls), frozen)
    if issubclass(cls, BaseException):
        return _refuse(f"cannot clone {name}: a BaseException that is not an Exception is a signal")
    if issubclass(cls, tuple) and hasattr(cls, "_fields") and hasattr(cls, "_make"):
        return _namedtuple
    for base in cls.__mro__:  # the nearest built-in base: datetime, not date
        if base in _BUILTIN_BASES:
            return _refuse(
                f"cannot clone a {name!r} object: only {base.__name__} itself is cloneable, "
                "not its subclasses"
            )
    return _refuse(f"cannot clone a {name!r} object")


def _short(value: object, limit: int = 40) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__qualname__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(f: _Failure, root: str) -> DataCloneError:
    path = root + "".join(reversed(f.segments))
    return DataCloneError(f"{f.reason} ({_short(f.value)})", value=f.value, path=path)


def _too_deep(message: object) -> DataCloneError:
    return DataCloneError(
        "the message is nested too deeply to clone (Python's recursion limit)", value=message
    )


def transfer_items(transfer: Iterable[object] | None) -> list[object]:
    """The objects of a transfer argument, unchecked. Raises `TypeError` when it is neither
    `None` nor an iterable."""
    if transfer is None:
        return []
    try:
        return list(transfer)
    except TypeError:
        raise TypeError(
            f"transfer must be an iterable of transferable objects or None, "
            f"not {type(transfer).__name__}"
        ) from None


def transfer_list(transfer: Iterable[object] | None, source: object = None) -> list[Transferable]:
    """Check a transfer list before anything is cloned: transferable, no duplicates, not
    `source` (the posting port). Raises `TypeError` when it is not an iterable at all."""
    items = transfer_items(transfer)
    seen: set[int] = set()
    for i, item in enumerate(items):
        where = f"transfer[{i}]"
        if not isinstance(item, Transferable):
            raise DataCloneError(
                f"a {type(item).__qualname__!r} object is not transferable "
                "(only MessagePort and ArrayBuffer are)",
                value=item,
                path=where,
            )
        if item is source:
            raise DataCloneError("transfer list contains the source port", value=item, path=where)
        if id(item) in seen:
            raise DataCloneError(
                f"transfer list contains the same {type(item).__name__} twice",
                value=item,
                path=where,
            )
        seen.add(id(item))
    return items  # type: ignore[return-value]


def serialize(
    message: object, items: list[Transferable]
) -> tuple[object, list[tuple[Transferable, Transferable]]]:
    """Clone `message` with `items` (from `transfer_list`) to be moved; detach nothing.

    Returns the receiver's data and the `(original, shell)` pairs to commit. Every check runs
    here: if this returns, committing the pairs cannot fail.
    """
    moves = [(item, item._transfer_shell()) for item in items]
    memo: dict[int, object] = {id(item): shell for item, shell in moves}
    try:
        data = _Cloner(memo).clone(message)
    except _Failure as f:
        raise _error(f, "message") from f.__cause__
    except RecursionError:
        raise _too_deep(message) from None
    for i, item in enumerate(items):  # after serializing, as StructuredSerializeWithTransfer
        reason = item._transfer_refusal()
        if reason is not None:
            raise DataCloneError(reason, value=item, path=f"transfer[{i}]")
    return data, moves


def serialize_moving_all(
    message: object, root: str = "message"
) -> tuple[object, list[tuple[Transferable, Transferable]]]:
    """As `serialize`, with every port and buffer found in `message` to be moved.

    For values that cross into an actor without a transfer list (`spawn`'s arguments,
    `task_status.started()`'s value). `root` names the value in error paths.
    """
    moves: list[tuple[Transferable, Transferable]] = []
    if type(message) is tuple:  # spawn's arguments are mostly ports and atomic values
        flat = _flat_moves(message, moves, root)
        if flat is not None:
            return flat, moves
        moves.clear()
    try:
        data = _Cloner({}, moves).clone(message)
    except _Failure as f:
        raise _error(f, root) from f.__cause__
    except RecursionError:
        raise _too_deep(message) from None
    return data, moves


def clone(message: object) -> object:
    """Clone `message` with an empty transfer list (post_message's common case)."""
    if type(message) in ATOMIC:
        return message
    if type(message) is tuple and _immutable_tuple(message):  # protocol tuples, mostly
        return message
    try:
        return _Cloner({}).compound(message)
    except _Failure as f:
        raise _error(f, "message") from f.__cause__
    except RecursionError:
        raise _too_deep(message) from None


def _immutable_tuple(items: tuple[Any, ...]) -> bool:
    """Whether a tuple holds only atomic values and tuples of them: it is then its own clone."""
    atomic = ATOMIC
    for v in items:
        if type(v) not in atomic:
            if type(v) is not tuple:
                return False
            for w in v:
                if type(w) not in atomic:
                    return False
    return True


def clone_replacing(value: object, replacements: dict[int, object], root: str) -> object:
    """Clone `value` with each object whose `id` is a key of `replacements` replaced by its
    entry (a restarted actor's arguments hold the slot's current ports and buffers). Raises
    `DataCloneError`, with paths rooted at `root`."""
    try:
        return _Cloner(replacements).clone(value)
    except _Failure as f:
        raise _error(f, root) from f.__cause__
    except RecursionError:
        raise _too_deep(value) from None


def _flat_moves(
    items: tuple[object, ...], moves: list[tuple[Transferable, Transferable]], root: str
) -> tuple[object, ...] | None:
    """`serialize_moving_all` of a tuple of atomic values and distinct transferables, without
    a cloner; `None` for any other tuple (the general path then handles it)."""
    for i, item in enumerate(items):
        if type(item) in ATOMIC:
            continue
        if not isinstance(item, Transferable) or any(item is m for m, _ in moves):
            return None
        reason = item._transfer_refusal()
        if reason is not None:
            failure = _Failure(reason, item)
            failure.segments.append(f"[{i}]")
            raise _error(failure, root)
        moves.append((item, item._transfer_shell()))
    if not moves:
        return items
    shells = {id(item): shell for item, shell in moves}
    return tuple(shells.get(id(item), item) for item in items)


def commit(moves: list[tuple[Transferable, Transferable]]) -> None:
    """Detach every original and move its contents into its shell."""
    for item, shell in moves:
        item._transfer_commit(shell)


def structured_clone(value: T, *, transfer: Iterable[object] | None = None) -> T:
    """Return a structured clone of `value`, moving what `transfer` lists into the copy.

    The same clone `post_message` makes, as the web's `structuredClone()`. The copy shares
    nothing mutable with `value`; immutable values are shared instead of copied, and cycles
    and shared references are kept. What clones: `None`, `bool`, numbers, `str`, `bytes`,
    `Decimal`, `UUID`, the `datetime` types, `range`, `pathlib` paths (the exact types),
    `list`, `dict`, `tuple` (named tuples too), `set`, `frozenset`, `bytearray`, enum members
    whose values are immutable (shared), exceptions (their `args` and instance attributes,
    `__notes__` included), attrs and dataclass instances, and
    [`ArrayBuffer`][actors.ArrayBuffer] (copied unless transferred).

    Args:
        value: the value to clone.
        transfer: [`MessagePort`][actors.MessagePort] and [`ArrayBuffer`][actors.ArrayBuffer]
            objects in `value` to move rather than copy: each is detached, and the clone holds
            its new copy. Made inside an actor, the moved ports belong to that actor.

    Returns:
        The clone.

    Raises:
        DataCloneError: `value` holds something that cannot be cloned (a port not listed in
            `transfer`, a function, a subclass of a built-in container, a live trio object,
            an enum member holding a mutable value, ...), or whose own code raised while it
            was cloned (a `__hash__`, a `__new__`, ...: that exception is the `__cause__`),
            or `transfer` lists something not transferable, detached or duplicated.
            Nothing was detached.
        TypeError: `transfer` is not iterable.
    """
    if transfer is None:
        return clone(value)  # type: ignore[return-value]
    data, moves = serialize(value, transfer_list(transfer))
    commit(moves)
    owner = CURRENT.get()
    if owner is not None:  # the moved ports stay with the actor that cloned them
        for _, shell in moves:
            if shell._owned:
                owner.adopt(shell)
    return data  # type: ignore[return-value]
