"""The wire codec: a message as bytes for another process, and bytes that are not one.

A round trip through ``encode`` and ``decode`` gives what ``structured_clone`` gives: the same
types, values and sharing (cycles included). The sender refuses what clone refuses, with the
same paths, and what the wire cannot carry. Any input that is not a message's encoding is a
``DecodeError`` at the receiver, quickly, and nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import enum
import gc
import math
import pathlib
import struct
import subprocess
import sys
import threading
import time
import types
import uuid
import weakref
import zoneinfo
from collections.abc import Callable
from typing import Any, NamedTuple

import attrs
import msgspec
import pytest
import trio
from _helpers import close_ports
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.msgpack import Ext

from actors import ArrayBuffer, DataCloneError, MessageChannel, structured_clone
from actors._clone import ATOMIC
from actors._wire import classes, codec, decoder, leaves
from actors._wire import opcodes as op
from actors._wire.codec import DecodeError, decode, encode

# -- test types --------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Perm(enum.Flag):
    R = 1
    W = 2


class Point(NamedTuple):
    x: int
    y: Any


INIT_CALLS: list[str] = []


@attrs.define
class MutableAttrs:
    name: str
    items: list[Any] = attrs.field(factory=list)
    other: Any = None

    def __attrs_post_init__(self) -> None:
        INIT_CALLS.append("attrs")


@attrs.frozen
class FrozenAttrs:
    name: str
    items: Any = ()


@dataclasses.dataclass
class MutableData:
    a: int
    b: Any = None

    def __post_init__(self) -> None:
        INIT_CALLS.append("dataclass")


@dataclasses.dataclass(frozen=True)
class FrozenData:
    a: Any
    b: Any = None


@dataclasses.dataclass(slots=True)
class SlottedData:
    a: int
    b: list[int]


@attrs.define
class Slots:
    """attrs slots: a field can be left unset by building with __new__."""

    a: int
    b: Any


@attrs.define(eq=False)
class Identity:
    """Mutable and hashable by identity."""

    value: int


class AppError(Exception):
    pass


@attrs.define
class AttrsError(Exception):
    code: int
    detail: list[int]


class Trap(Exception):
    """Raised by user code while a value is rebuilt."""


@dataclasses.dataclass(eq=False)
class HashedOriginal:
    """Hashable only with its `sealed` attribute, which is not a field, so a clone lacks it."""

    n: int

    def __hash__(self) -> int:
        if not hasattr(self, "sealed"):
            raise Trap("only the original is hashable")
        return self.n


def sealed(value: Any) -> Any:
    value.sealed = True
    return value


@dataclasses.dataclass
class NeedsArgs:
    """Its `__new__` wants the arguments its `__init__` gets (a rebuild passes none)."""

    n: list[int]

    def __new__(cls, *args: Any) -> NeedsArgs:
        if not args:
            raise Trap("NeedsArgs() needs arguments")
        return super().__new__(cls)


class Pair(NamedTuple):
    a: int
    b: Any


class Strict(Pair):
    """A named tuple whose `_make` refuses to run."""

    __slots__ = ()

    @classmethod
    def _make(cls, iterable: Any) -> Strict:  # type: ignore[override]
        raise Trap("no _make")


class OddZone(datetime.tzinfo):
    """A tzinfo that is neither a datetime.timezone nor a ZoneInfo."""

    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(hours=1)


class Misnamed(NamedTuple):
    a: int


Misnamed.__qualname__ = "NotHere"  # so its module does not hold it under that name


def round_trip(value: object, transfer: list[Any] | None = None) -> Any:
    data, _ = encode(value, transfer or [])
    return decode(data, [])


def stream(*tokens: object) -> bytes:
    """A STREAM frame of these tokens."""
    return msgspec.msgpack.encode(Ext(leaves.STREAM, msgspec.msgpack.encode(list(tokens))))


# -- comparing object graphs -------------------------------------------------------------------


def same_atom(x: Any, y: Any) -> bool:
    if type(x) is float:
        return (math.isnan(x) and math.isnan(y)) or (x == y and str(x) == str(y))
    if type(x) is complex:
        return same_atom(x.real, y.real) and same_atom(x.imag, y.imag)
    if type(x) is decimal.Decimal:
        return x.compare_total(y) == 0
    if type(x) is uuid.UUID:
        return x == y and x.is_safe == y.is_safe
    if isinstance(x, enum.Enum):
        return x is y
    return bool(x == y) and repr(x) == repr(y)


def assert_same_graph(a: object, b: object) -> None:
    """`a` and `b` are equal object graphs: the same exact types, equal atoms, and the same
    pattern of identity (two places hold one object in `a` exactly where they do in `b`)."""
    seen: dict[int, object] = {}
    back: dict[int, object] = {}
    todo: list[tuple[Any, Any, str]] = [(a, b, "message")]
    while todo:
        x, y, where = todo.pop()
        assert type(x) is type(y), f"{where}: {type(x).__name__} != {type(y).__name__}"
        if type(x) in ATOMIC or isinstance(x, enum.Enum):
            assert same_atom(x, y), f"{where}: {x!r} != {y!r}"
            continue
        if id(x) in seen or id(y) in back:
            assert seen.get(id(x)) is y, f"{where}: shared differently"
            continue
        seen[id(x)], back[id(y)] = y, x
        todo.extend(children(x, y, where))


def children(x: Any, y: Any, where: str) -> list[tuple[Any, Any, str]]:
    if isinstance(x, BaseException):
        assert x.__dict__.keys() == y.__dict__.keys(), where
        pairs = [(x.args, y.args, f"{where}.args")]
        pairs += [(v, y.__dict__[k], f"{where}.{k}") for k, v in x.__dict__.items()]
        return pairs + field_pairs(x, y, where)
    if isinstance(x, list | tuple):
        assert len(x) == len(y), where
        return [(v, w, f"{where}[{i}]") for i, (v, w) in enumerate(zip(x, y, strict=True))]
    if isinstance(x, dict):
        assert len(x) == len(y), where
        pairs = []
        for (k, v), (j, w) in zip(x.items(), y.items(), strict=True):
            pairs += [(k, j, f"{where} (a key)"), (v, w, f"{where}[{k!r}]")]
        return pairs
    if isinstance(x, set | frozenset):
        assert len(x) == len(y), where
        members = {m: m for m in y}
        return [(m, members[m], f"{where} (a member)") for m in x]
    if isinstance(x, bytearray):
        assert x == y, where
        return []
    if isinstance(x, ArrayBuffer):
        assert bytes(x) == bytes(y), where
        return []
    return field_pairs(x, y, where)


def field_pairs(x: Any, y: Any, where: str) -> list[tuple[Any, Any, str]]:
    names = [f.name for f in attrs.fields(type(x))] if attrs.has(type(x)) else []
    if dataclasses.is_dataclass(x):
        names = [f.name for f in dataclasses.fields(x)]
    missing = object()
    pairs = []
    for name in names:
        v, w = getattr(x, name, missing), getattr(y, name, missing)
        assert (v is missing) == (w is missing), f"{where}.{name}"
        if v is not missing:
            pairs.append((v, w, f"{where}.{name}"))
    return pairs


# -- strategies --------------------------------------------------------------------------------

_offsets = st.timedeltas(
    min_value=datetime.timedelta(hours=-23, minutes=-59),
    max_value=datetime.timedelta(hours=23, minutes=59),
)
_tzs = st.none() | st.timezones() | st.builds(datetime.timezone, _offsets)
_named_tzs = st.builds(datetime.timezone, _offsets, st.text(min_size=1, max_size=5))
_texts = st.text(max_size=8) | st.text(st.characters(codec=None), max_size=4)

hashable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**90), max_value=2**90),
    st.floats(allow_nan=False),
    st.complex_numbers(allow_nan=False),
    _texts,
    st.binary(max_size=8),
    st.decimals(allow_nan=False),
    st.uuids(),
    st.dates(),
    st.datetimes(timezones=_tzs),
    st.times(timezones=_tzs | _named_tzs),
    st.timedeltas(),
    _named_tzs,
    st.just(datetime.UTC),
    st.builds(range, st.integers(), st.integers(), st.integers().filter(bool)),
    st.builds(pathlib.PurePosixPath, st.text(max_size=8)),
    st.builds(pathlib.PureWindowsPath, st.text(max_size=8)),
    st.builds(pathlib.Path, st.text(max_size=8)),
    st.sampled_from([Color.RED, Color.GREEN, Perm.R, Perm.R | Perm.W, Perm(0)]),
)

hashables = st.recursive(
    hashable_scalars,
    lambda inner: st.one_of(
        st.tuples(inner, inner),
        st.frozensets(inner, max_size=3),
        st.builds(FrozenAttrs, _texts, inner),
        st.builds(FrozenData, inner, inner),
        st.builds(Point, st.integers(), inner),
    ),
    max_leaves=6,
)

scalars = st.one_of(
    hashable_scalars,
    st.floats(),
    st.decimals(),
    st.binary(max_size=8).map(bytearray),
    st.binary(max_size=8).map(ArrayBuffer),
)


def _exception(args: list[Any], notes: list[str], attribute: Any) -> Exception:
    error = AppError(*args)
    for note in notes:
        error.add_note(note)
    error.extra = attribute  # type: ignore[attr-defined]
    return error


def _unset(a: int) -> Slots:
    value = Slots.__new__(Slots)
    value.a = a  # b left unset
    return value


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    small = st.lists(inner, max_size=4)
    return st.one_of(
        small,
        small.map(tuple),
        st.dictionaries(hashables, inner, max_size=4),
        st.dictionaries(_texts, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.builds(Point, st.integers(), inner),
        st.builds(MutableAttrs, _texts, small, inner),
        st.builds(FrozenAttrs, _texts, inner),
        st.builds(MutableData, st.integers(), inner),
        st.builds(FrozenData, inner, inner),
        st.builds(SlottedData, st.integers(), st.lists(st.integers(), max_size=3)),
        st.builds(_unset, st.integers()),
        st.builds(Identity, st.integers()),
        small.map(lambda args: ValueError(*args)),
        st.builds(_exception, small, st.lists(_texts, max_size=2), inner),
        st.builds(AttrsError, st.integers(), st.lists(st.integers(), max_size=3)),
        inner.map(lambda v: ExceptionGroup("group", [ValueError(v)])),
    )


values = st.recursive(scalars, _containers, max_leaves=12)


def _holders_and_targets(value: object) -> tuple[list[Any], list[Any]]:
    """The mutable objects of `value` that can take a new reference, and every object."""
    holders: list[Any] = []
    targets: list[Any] = []
    seen: set[int] = set()
    todo = [value]
    while todo:
        x = todo.pop()
        if type(x) in ATOMIC or isinstance(x, enum.Enum) or id(x) in seen:
            continue
        seen.add(id(x))
        targets.append(x)
        if isinstance(x, BaseExceptionGroup):
            continue  # a cycle back into a group is refused by the wire (see below)
        if type(x) in (list, dict, MutableAttrs):
            holders.append(x)
        if isinstance(x, list | tuple):
            todo.extend(x)
        elif isinstance(x, dict):
            todo.extend(x.values())
        elif isinstance(x, BaseException):
            todo.extend([*x.args, *x.__dict__.values()])
        elif attrs.has(type(x)) or dataclasses.is_dataclass(x):
            todo.extend(v for v in vars_of(x))
    return holders, targets


def vars_of(x: Any) -> list[Any]:
    names = [f.name for f in attrs.fields(type(x))] if attrs.has(type(x)) else []
    if dataclasses.is_dataclass(x):
        names = [f.name for f in dataclasses.fields(x)]
    return [getattr(x, n) for n in names if hasattr(x, n)]


@st.composite
def graphs(draw: st.DrawFn) -> Any:
    """A value with extra references added: shared objects and cycles."""
    value = draw(st.lists(values, min_size=1, max_size=3))
    for _ in range(draw(st.integers(0, 4))):
        holders, targets = _holders_and_targets(value)
        holder, target = draw(st.sampled_from(holders)), draw(st.sampled_from(targets))
        if type(holder) is list:
            holder.append(target)
        elif type(holder) is dict:
            holder[f"link{len(holder)}"] = target
        else:
            holder.other = target
    return value


# -- round trips -------------------------------------------------------------------------------


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_a_round_trip_is_the_structured_clone(value: object) -> None:
    """For any cloneable value, decode(encode(v)) is structured_clone(v): types, values, sharing."""
    assert_same_graph(round_trip(value), structured_clone(value))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**200),
        -0.0,
        float("nan"),
        float("-inf"),
        complex(-0.0, float("nan")),
        "\udc80 lone surrogate",
        b"\x00bytes",
        bytearray(b"ba"),
        decimal.Decimal("-sNaN17"),
        decimal.Decimal("1.100E+5"),
        uuid.UUID(int=7, is_safe=uuid.SafeUUID.unsafe),
        datetime.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
        datetime.datetime.max,
        datetime.time(23, 59, 59, 999999, tzinfo=datetime.timezone(-datetime.timedelta(hours=5))),
        datetime.timedelta.min,
        datetime.timezone(datetime.timedelta(hours=3), "Here"),
        range(-(2**70), 2**70, 2**65),
        pathlib.PureWindowsPath("C:/a\\b"),
        pathlib.Path("/tmp/x"),
        (),
        (1, "a", None),
        ((1, 2), (3,)),
        {"a": 1},
        {1: "a", (2, 3): [4]},
        {1, 2.5, "x"},
        frozenset({(1, frozenset({2}))}),
        Point(1, [2]),
        Color.GREEN,
        Perm.R | Perm.W,
        Perm(0),
        FrozenAttrs("n", (1, 2)),
        SlottedData(1, [2]),
        ValueError("bad", [1]),
        FileNotFoundError(2, "gone"),
        ExceptionGroup("several", [ValueError(1), KeyError("k")]),
        trio.TooSlowError("late"),
    ],
    ids=repr,
)
def test_a_value_comes_back_exactly(value: object) -> None:
    """Each supported type comes back as its exact type and value (a tuple as a tuple, ...)."""
    assert_same_graph(round_trip(value), structured_clone(value))


@pytest.mark.parametrize("value", [0, -5, 2**63, 1.5, "short", "", None, True])
def test_a_scalar_message_is_its_msgpack_encoding(value: object) -> None:
    """A message that is a msgpack scalar encodes as itself, without a wrapper."""
    assert encode(value, [])[0] == msgspec.msgpack.encode(value)


@pytest.mark.parametrize("value", [("call", 3, None), {"k0": 0, "k1": 1.5}], ids=["tuple", "dict"])
def test_a_flat_tuple_or_str_dict_is_its_msgpack_encoding(value: object) -> None:
    """A tuple of scalars is a msgpack array, a dict of str to scalars a msgpack map."""
    assert encode(value, [])[0] == msgspec.msgpack.encode(value)
    assert type(round_trip(value)) is type(value)


def test_attrs_and_dataclass_instances_are_rebuilt_without_init() -> None:
    """Fields classes come back as new instances built field by field, __init__ not called."""
    value = [MutableAttrs("job", [1]), MutableData(1, [2])]
    INIT_CALLS.clear()
    result = round_trip(value)
    assert INIT_CALLS == []
    assert result == value
    assert_same_graph(result, structured_clone(value))


def test_an_unset_attrs_slot_stays_unset() -> None:
    """An attrs slot that was never set is still unset after the round trip."""
    result = round_trip(_unset(1))
    assert result.a == 1
    assert not hasattr(result, "b")


def test_an_enum_member_travels_by_name() -> None:
    """An enum member is named, not valued, in the frame, and comes back as the member."""
    data, _ = encode([Color.GREEN], [])
    assert b"GREEN" in data
    assert decode(data, [])[0] is Color.GREEN


def test_an_exception_keeps_args_attributes_and_notes() -> None:
    """An exception comes back with its args, its instance attributes and its notes."""
    error = AppError("failed", [1])
    error.code = 7  # type: ignore[attr-defined]
    error.add_note("while testing")
    result = round_trip(error)
    assert type(result) is AppError
    assert result.args == ("failed", [1])
    assert result.code == 7
    assert result.__notes__ == ["while testing"]


def test_a_data_clone_error_whose_value_cannot_be_sent_arrives_without_it() -> None:
    """As with clone, a DataCloneError's uncloneable value is None on the other side."""
    result = round_trip(DataCloneError("cannot", value=print, path="message.f"))
    assert (result.value, result.path, str(result)) == (None, "message.f", "message.f: cannot")


def test_shared_references_stay_shared() -> None:
    """Two references to one list come back as two references to one new list."""
    shared = [1]
    result = round_trip({"a": shared, "b": [shared], "c": (shared,)})
    assert result["a"] is result["b"][0] is result["c"][0]


def test_a_self_referencing_list_is_preserved() -> None:
    """A list that contains itself comes back as a list that contains itself."""
    value: list[Any] = [1]
    value.append(value)
    result = round_trip(value)
    assert result[1] is result


def test_a_cycle_through_a_tuple_is_preserved() -> None:
    """A tuple holding a list that holds the tuple keeps the cycle, as clone does."""
    inner: list[Any] = []
    value = (inner,)
    inner.append(value)
    result = round_trip(value)
    assert type(result) is tuple
    assert result[0][0] is result


def test_a_cycle_through_an_exceptions_args_is_preserved() -> None:
    """An exception whose args hold a list holding the exception keeps the cycle."""
    box: list[Any] = []
    error = ValueError(box, 3)
    box.append(error)
    result = round_trip(error)
    assert result.args[0][0] is result
    assert result.args[1] == 3


def test_a_cycle_through_a_frozen_instance_is_preserved() -> None:
    """A frozen attrs instance holding a list holding the instance keeps the cycle."""
    box: list[Any] = []
    value = FrozenAttrs("n", box)
    box.append(value)
    result = round_trip(value)
    assert result.items[0] is result


# -- transfer ----------------------------------------------------------------------------------


def test_listed_ports_are_referred_to_by_their_index() -> None:
    """A port listed in transfer is the object at its index in `transferred`."""
    a, b = MessageChannel(), MessageChannel()
    transfer = [a.port1, b.port1]
    data, listed = encode({"second": b.port1, "first": (a.port1,)}, transfer)
    assert listed is transfer
    stand_ins = [object(), object()]
    result = decode(data, stand_ins)
    assert result["first"][0] is stand_ins[0]
    assert result["second"] is stand_ins[1]
    close_ports(a, b)


def test_encode_detaches_nothing() -> None:
    """Encoding leaves listed buffers attached and listed ports entangled: the caller commits."""
    channel, buffer = MessageChannel(), ArrayBuffer(b"data")
    encode([channel.port1, buffer], [channel.port1, buffer])
    assert not buffer.detached
    assert channel.port1.statistics().entangled
    close_ports(channel)


def test_a_listed_buffer_is_the_transferred_object_wherever_it_is_mentioned() -> None:
    """A listed buffer mentioned twice is the one object standing for it, twice."""
    buffer = ArrayBuffer(b"data")
    data, _ = encode({"a": buffer, "b": [buffer]}, [buffer])
    moved = ArrayBuffer(b"data")
    result = decode(data, [moved])
    assert result["a"] is result["b"][0] is moved


def test_an_unlisted_buffer_is_copied_once() -> None:
    """A buffer not listed arrives as one independent copy, however often it is mentioned."""
    buffer = ArrayBuffer(b"abc")
    result = round_trip([buffer, buffer])
    assert result[0] is result[1]
    assert result[0] is not buffer
    assert bytes(result[0]) == b"abc"


def test_an_unlisted_port_is_refused_with_clones_words() -> None:
    """A port in the message but not in transfer is clone's DataCloneError, with its path."""
    channel = MessageChannel()
    with pytest.raises(DataCloneError) as info:
        encode({"port": channel.port1}, [])
    assert info.value.path == "message['port']"
    assert info.value.value is channel.port1
    assert "must also be listed in transfer" in info.value.reason
    close_ports(channel)


def test_a_detached_buffer_in_transfer_is_refused() -> None:
    """A listed buffer that is already detached is refused at its place in transfer."""
    buffer = ArrayBuffer(1)
    structured_clone(buffer, transfer=[buffer])
    with pytest.raises(DataCloneError) as info:
        encode([1], [buffer])
    assert info.value.path == "transfer[0]"


def test_a_listed_buffer_with_a_live_view_is_refused() -> None:
    """A listed buffer with a live memoryview is refused, as clone refuses it."""
    buffer = ArrayBuffer(4)
    with buffer.view(), pytest.raises(DataCloneError, match="live memoryview"):
        encode(buffer, [buffer])


# -- refusals ----------------------------------------------------------------------------------


def _clone_error(message: object) -> DataCloneError:
    with pytest.raises(DataCloneError) as info:
        structured_clone(message)
    return info.value


@pytest.mark.parametrize(
    "message",
    [
        {"jobs": [1, 2, 3, lambda: None]},
        {"k": {print}},
        {print: 1},
        MutableData(1, b=print),
        Point(1, print),
        ValueError("x", print),
        (1, [2, print]),
        [trio.Event()],
        [threading.Lock()],
        {"s": type("MyStr", (str,), {})("s")},
        [KeyboardInterrupt()],
        {"box": enum.Enum("Box", {"ITEMS": [1]}).ITEMS},  # type: ignore[attr-defined]
        {"k": {sealed(HashedOriginal(1))}},
        {"k": NeedsArgs([1])},
        {"k": Strict(1, [2])},
    ],
    ids=[
        "function",
        "set-member",
        "dict-key",
        "dataclass-field",
        "namedtuple-field",
        "exception-arg",
        "tuple",
        "trio.Event",
        "thread-lock",
        "str-subclass",
        "KeyboardInterrupt",
        "mutable-enum-value",
        "hash-of-the-copy-raises",
        "__new__-raises",
        "_make-raises",
    ],
)
def test_what_clone_refuses_the_wire_refuses_with_the_same_path(message: object) -> None:
    """The sender refuses what clone refuses, with clone's path, reason and value."""
    expected = _clone_error(message)
    with pytest.raises(DataCloneError) as info:
        encode(message, [])
    assert (info.value.path, info.value.reason) == (expected.path, expected.reason)
    assert info.value.value is expected.value


def test_a_datetime_with_another_tzinfo_is_refused_by_the_wire() -> None:
    """Clone shares any datetime; the wire refuses one whose tzinfo it cannot name."""
    message = {"when": datetime.datetime(2024, 1, 1, tzinfo=OddZone())}
    structured_clone(message)
    with pytest.raises(DataCloneError) as info:
        encode(message, [])
    assert info.value.path == "message['when']"
    assert "tzinfo only if it is a datetime.timezone or a zoneinfo.ZoneInfo" in info.value.reason


def test_a_zoneinfo_without_a_key_is_refused_by_the_wire() -> None:
    """A ZoneInfo made from a file has no key for the receiver to look up: refused."""
    with open(zoneinfo.TZPATH[0] + "/UTC", "rb") as file:
        zone = zoneinfo.ZoneInfo.from_file(file)
    with pytest.raises(DataCloneError, match="has none") as info:
        encode([datetime.time(1, tzinfo=zone)], [])
    assert info.value.path == "message[0]"


def test_a_class_defined_in_a_function_is_refused_by_the_wire() -> None:
    """Clone copies an instance of a local class; the wire cannot name the class."""

    @dataclasses.dataclass
    class Local:
        a: int

    message = {"jobs": [Local(1)]}
    structured_clone(message)
    with pytest.raises(DataCloneError, match="defined inside a function") as info:
        encode(message, [])
    assert info.value.path == "message['jobs'][0]"


def test_a_class_not_found_by_its_name_is_refused_by_the_wire() -> None:
    """A class its module does not hold under its qualified name cannot be named."""
    with pytest.raises(DataCloneError, match="cannot be found as") as info:
        encode((1, Misnamed(1)), [])
    assert info.value.path == "message[1]"


def test_a_cycle_back_into_an_exception_group_is_refused_by_the_wire() -> None:
    """The receiver makes a group from its members, so a member cannot refer back to it."""
    member = ValueError("m")
    group = ExceptionGroup("g", [member])
    member.group = group  # type: ignore[attr-defined]
    with pytest.raises(DataCloneError, match="exception group") as info:
        encode(group, [])
    assert info.value.path == "message.args[1][0].group"


def test_a_message_nested_too_deeply_is_refused() -> None:
    """Nesting past the recursion limit is a DataCloneError, as in clone."""
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(DataCloneError, match="nested too deeply"):
        encode(deep, [])


# -- classes on the receiving side -------------------------------------------------------------


def test_a_class_whose_module_is_not_imported_here_is_a_decode_error() -> None:
    """A frame naming a module this process has not imported fails, naming it; nothing is
    imported."""
    data = stream([op.CLASS, classes.FIELDS, "no_such_wire_module", "Job", "a"], [op.OBJECT, 0], 1)
    with pytest.raises(DecodeError, match="no_such_wire_module") as info:
        decode(data, [])
    assert "no_such_wire_module" not in sys.modules
    assert info.value.path == "message"


@pytest.mark.parametrize(
    ("module", "qualname", "kind"),
    [
        ("builtins", "object", classes.FIELDS),
        ("os", "system", classes.FIELDS),
        ("trio", "Event", classes.FIELDS),
        (__name__, "Color", classes.FIELDS),
        (__name__, "MutableAttrs", classes.FROZEN),
        (__name__, "NoSuchClass", classes.FIELDS),
        (__name__, "Color.RED", classes.ENUM),
    ],
)
def test_a_class_that_is_missing_or_of_another_kind_is_a_decode_error(
    module: str, qualname: str, kind: int
) -> None:
    """A class of a kind clone does not rebuild (or not the kind sent) is refused by name."""
    data = stream([op.CLASS, kind, module, qualname], None)
    with pytest.raises(DecodeError, match=qualname.split(".")[0]):
        decode(data, [])


def test_a_class_with_other_fields_here_is_a_decode_error() -> None:
    """A fields class whose fields differ on this side (another version) is refused."""
    data = stream([op.CLASS, classes.FIELDS, __name__, "MutableData", "a", "c"], None)
    with pytest.raises(DecodeError, match="has fields"):
        decode(data, [])


def test_classes_of_the_main_script_travel_as_main() -> None:
    """With set_main_module, the child's main-script module is `__main__` on the wire."""
    module = types.ModuleType("wire_child_main")
    job = attrs.make_class("Job", ["n"])
    job.__module__ = module.__name__
    module.Job = job  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        classes.set_main_module(module.__name__)
        data, _ = encode(job(1), [])
        assert b"__main__" in data
        assert b"wire_child_main" not in data
        assert type(decode(data, [])) is job
        classes.set_main_module("__main__")
        with pytest.raises(DecodeError, match=r"__main__\.Job"):
            decode(data, [])  # this process's own __main__ has no Job
    finally:
        classes.set_main_module("__main__")
        del sys.modules[module.__name__]


def _temporary_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    job = attrs.make_class("Job", ["n"])
    job.__module__ = name
    module.Job = job  # type: ignore[attr-defined]
    sys.modules[name] = module
    return module


def test_a_class_rebound_in_its_module_is_found_anew() -> None:
    """A receiver that saw a class by its name sees the new class once the name is rebound."""
    module = _temporary_module("wire_rebound")
    try:
        data, _ = encode(module.Job(1), [])
        assert type(decode(data, [])) is module.Job
        module.Job = attrs.make_class("Job", ["n"])
        module.Job.__module__ = module.__name__
        assert type(decode(data, [])) is module.Job
        del sys.modules[module.__name__]
        with pytest.raises(DecodeError, match="not imported"):
            decode(data, [])
    finally:
        sys.modules.pop(module.__name__, None)


def _receive_made_class() -> weakref.ref[type]:
    module = _temporary_module("wire_collected")
    data, _ = encode(module.Job(1), [])
    decode(data, [])
    del sys.modules[module.__name__]
    return weakref.ref(module.Job)


def test_a_class_received_can_be_collected() -> None:
    """What the receiver remembers of a class it found does not keep it (or its module) alive."""
    made = _receive_made_class()
    gc.collect()
    assert made() is None


def _send_made_class() -> weakref.ref[type]:
    cls = dataclasses.make_dataclass("Made", ["a"])
    cls.__module__ = __name__
    globals()["Made"] = cls
    encode([cls(1)], [])
    del globals()["Made"]
    return weakref.ref(cls)


def test_a_class_seen_by_the_codec_can_be_collected() -> None:
    """The codec's cache of class decisions does not keep a class alive."""
    made = _send_made_class()
    gc.collect()
    assert made() is None


def test_the_in_process_core_never_imports_the_wire() -> None:
    """Importing actors (and running a clone) leaves actors._wire unimported."""
    code = "import actors, sys; actors.structured_clone([1]); print('actors._wire' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_an_enum_member_whose_name_is_not_utf8_is_refused_by_the_sender() -> None:
    """A member name msgpack cannot hold fails at the sender, not at the receiver."""
    odd = enum.Enum("Odd", {"\udc80": 1})
    odd.__module__ = __name__
    globals()["Odd"] = odd
    try:
        with pytest.raises(DataCloneError, match="not valid UTF-8"):
            encode([odd["\udc80"]], [])
    finally:
        del globals()["Odd"]


def test_the_instruction_table_follows_the_opcodes() -> None:
    """Each opcode indexes the decoder's function of the same name."""
    for name in dir(op):
        if name.isupper():
            handler = decoder._INSTRUCTIONS[getattr(op, name)]
            assert handler.__name__.replace("_", "") == name.lower().replace("_", "")


# -- malformed input ---------------------------------------------------------------------------

_msgpack_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.text(max_size=6),
    st.binary(max_size=6),
    st.builds(Ext, st.integers(-128, 127), st.binary(max_size=12)),
)
_msgpack = st.recursive(
    _msgpack_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=4) | st.integers(-9, 9), inner, max_size=4)
    ),
    max_leaves=12,
)
_token_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.floats(), st.text(max_size=6)
)
_tokens = st.one_of(
    _token_scalars,
    st.builds(Ext, st.integers(0, 17), st.binary(max_size=24)),
    st.builds(
        lambda code, rest: [code, *rest], st.integers(0, 24), st.lists(_token_scalars, max_size=4)
    ),
    st.dictionaries(st.text(max_size=4), _token_scalars, max_size=3),
)
_stand_ins = [ArrayBuffer(b"x"), object()]


def decodes_or_refuses(data: bytes) -> None:
    """`decode` returns a value or raises DecodeError; anything else fails the test."""
    with contextlib.suppress(DecodeError):
        decode(data, _stand_ins)


@given(st.binary(max_size=200))
def test_random_bytes_are_only_ever_a_decode_error(data: bytes) -> None:
    """Random bytes decode to a value or raise DecodeError, never another exception."""
    decodes_or_refuses(data)


@given(_msgpack)
def test_random_msgpack_is_only_ever_a_decode_error(value: object) -> None:
    """Valid msgpack of any shape decodes to a value or raises DecodeError."""
    decodes_or_refuses(msgspec.msgpack.encode(value))


@given(st.lists(_tokens, max_size=12))
def test_random_token_streams_are_only_ever_a_decode_error(tokens: list[object]) -> None:
    """Streams of random instructions, extensions and maps are a value or a DecodeError."""
    decodes_or_refuses(stream(*tokens))
    decodes_or_refuses(msgspec.msgpack.encode(tokens))


@given(st.integers(1, 17), st.binary(max_size=40))
def test_extensions_with_random_payloads_are_only_ever_a_decode_error(
    code: int, payload: bytes
) -> None:
    """Every extension code, with a payload of any bytes, is a value or a DecodeError."""
    decodes_or_refuses(msgspec.msgpack.encode(Ext(code, payload)))
    decodes_or_refuses(stream([op.LIST, 1], Ext(code, payload)))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.data())
def test_a_real_frame_with_one_token_changed_is_only_ever_a_decode_error(
    value: object, data: st.DataObject
) -> None:
    """A valid frame with one token replaced at random is a value or a DecodeError."""
    frame, _ = encode(value, [])
    ext = msgspec.msgpack.decode(frame)
    if type(ext) is not Ext or ext.code != leaves.STREAM:
        return
    tokens = msgspec.msgpack.decode(ext.data)
    tokens[data.draw(st.integers(0, len(tokens) - 1))] = data.draw(_tokens)
    decodes_or_refuses(stream(*tokens))


_MUTABLE_DATA = [op.CLASS, classes.FIELDS, __name__, "MutableData", "a", "b"]
_VALUE_ERROR = [op.CLASS, classes.EXCEPTION, "builtins", "ValueError"]
_ZONE_OUTSIDE = struct.pack(">HBBBBBIB", 2024, 1, 1, 0, 0, 0, 0, 0) + b"\x03../../etc/passwd"


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (stream([op.REF, 5]), "not an id"),
        (stream([op.TUPLE, 1], [op.REF, 0]), "still being built"),
        (stream([op.LIST, 1], [op.MISSING]), "only a field"),
        (stream([op.MOVED, 2]), "transferred"),
        (stream([op.LIST, 2], 1), "ends inside a list"),
        (stream(1, 2), "more than one"),
        (stream(), "no message"),
        (stream([99]), "not an instruction"),
        (stream(Ext(99, b"")), "unknown extension"),
        (stream([op.DICT_STR, 1], {"a": None}, "b", 1), "not a key of the map"),
        (stream([op.ENUM, 0, "RED"]), "not defined"),
        (stream([op.TUPLE, 0, 0]), "still being built"),
        (stream([op.LIST_FLAT], [op.TUPLE, 0, 0]), "is not a tuple"),
        (stream([op.CLASS, classes.ENUM, __name__, "Color"], [op.ENUM, 0, "BLUE"]), "BLUE"),
        (stream(_MUTABLE_DATA, [op.OBJECT_FLAT, 0, 1]), "field values"),
        (stream(_VALUE_ERROR, [op.EXCEPTION, 0, 0, 0], 1), "args are a tuple"),
        (msgspec.msgpack.encode(Ext(leaves.DATE, b"\x07\xe8\x0d\x01")), "DATE"),
        (msgspec.msgpack.encode(Ext(leaves.DATETIME, _ZONE_OUTSIDE)), "no time zone"),
        (msgspec.msgpack.encode(Ext(leaves.RANGE, b"\xff\xff\xff\xff")), "RANGE"),
        (b"\xc6\xff\xff\xff\xff" + b"\x00" * 15, "not a frame"),
        (b"\xdd\xff\xff\xff\xff" + b"\x00" * 15, "not a frame"),
        (b"\xc9\xff\xff\xff\xff\x10" + b"\x00" * 14, "not a frame"),
        (b"\x91" * 100_000 + b"\x00", "not a frame"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_frame_of_the_wrong_shape_is_a_decode_error(frame: bytes, words: str) -> None:
    """Wrong contents for the right codes, undefined ids, huge lengths: DecodeError, saying so."""
    with pytest.raises(DecodeError, match=words):
        decode(frame, [])


def test_a_decode_error_names_the_path() -> None:
    """The path of a DecodeError leads to the malformed value, as clone's paths do."""
    bad_date = Ext(leaves.DATE, b"\x07\xe8\x0d\x01")
    frame = stream([op.DICT_STR, 1], {"a": 1, "jobs": None}, "jobs", [op.LIST, 2], 1, bad_date)
    with pytest.raises(DecodeError) as info:
        decode(frame, [])
    assert info.value.path == "message['jobs'][1]"


def _guarded(build: Callable[[], bytes]) -> tuple[bytes, float]:
    data = build()
    assert len(data) < 1 << 20
    start = time.perf_counter()
    with contextlib.suppress(DecodeError):
        decode(data, [])
    return data, time.perf_counter() - start


def _nested() -> bytes:
    return stream(*[[op.LIST, 1]] * 200_000, 0)


def _exponential_key() -> bytes:
    """A tuple of two references to a tuple of two references to ... 60 deep, as a set member:
    hashing it would take 2**60 steps. Ids: the list 0, the tuples 1 to 60, the set 61."""
    tokens: list[object] = [[op.LIST, 61], [op.TUPLE_FLAT, 1]]
    for k in range(1, 60):
        tokens += [[op.TUPLE, 2], [op.REF, k], [op.REF, k]]
    return stream(*tokens, [op.SET, 1], [op.REF, 60])


def _shared_big_key() -> bytes:
    big = [op.TUPLE_FLAT, *range(20_000)]
    return stream([op.LIST, 2], big, [op.SET, 60_000], *[[op.REF, 1]] * 60_000)


def _colliding_keys() -> bytes:
    modulus = sys.hash_info.modulus
    keys = [Ext(leaves.UUID, (k * modulus).to_bytes(16, "big")) for k in range(1, 40_000)]
    return stream([op.SET, len(keys)], *keys)


def _many_refs() -> bytes:
    return stream([op.LIST, 200_001], [op.LIST_FLAT, 1, 2, 3], *[[op.REF, 1]] * 200_000)


@pytest.mark.parametrize(
    "build",
    [_nested, _exponential_key, _shared_big_key, _colliding_keys, _many_refs],
    ids=["nested", "exponential-key", "shared-big-key", "colliding-keys", "many-refs"],
)
def test_a_hostile_frame_under_a_megabyte_decodes_in_bounded_time(
    build: Callable[[], bytes],
) -> None:
    """Deep nesting, shared references hashed over and over, crafted hash collisions: each
    frame finishes (a value or a DecodeError) well within a generous guard."""
    _, seconds = _guarded(build)
    assert seconds < 10


@pytest.mark.parametrize(
    ("build", "words"),
    [(_exponential_key, "too long"), (_shared_big_key, "too long"), (_colliding_keys, "same hash")],
    ids=["exponential-key", "shared-big-key", "colliding-keys"],
)
def test_keys_too_costly_to_hash_are_a_decode_error(build: Callable[[], bytes], words: str) -> None:
    """Keys whose hashing a frame makes costly are refused before they are hashed."""
    with pytest.raises(DecodeError, match=words):
        decode(build(), [])


def test_a_flat_container_holds_only_scalars() -> None:
    """A flat container can only hold scalars: msgspec refuses anything else inside it."""
    with pytest.raises(DecodeError):
        decode(msgspec.msgpack.encode([Ext(leaves.BYTES, b"x")]), [])
    assert codec.decode(msgspec.msgpack.encode([1, "a"]), []) == (1, "a")
