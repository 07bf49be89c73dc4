"""Conformance: structured clone of Python values (spec rules 11, 17, 18 and 19, our type rules).

What is shared (immutable, returned as-is), what is copied, what is rebuilt field by field, what
is refused with ``DataCloneError``, and how cycles, shared references and transferables inside a
message come out. Most tests use ``structured_clone``, which makes the clone ``post_message``
makes; a few go through a channel to show it is the same clone.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import gc
import pathlib
import socket
import ssl
import subprocess
import sys
import threading
import uuid
import weakref
from typing import Any, NamedTuple

import attrs
import pytest
import trio
from _helpers import close_ports
from hypothesis import given
from hypothesis import strategies as st

from actors import (
    ArrayBuffer,
    DataCloneError,
    MessageChannel,
    TooManyRestartsError,
    _clone,
    structured_clone,
)

# -- test types --------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


class Point(NamedTuple):
    x: int
    y: Any


@attrs.frozen
class FrozenAttrs:
    name: str
    items: Any = ()


@dataclasses.dataclass(frozen=True)
class FrozenData:
    name: str
    items: Any = ()


INIT_CALLS: list[str] = []


@attrs.define
class MutableAttrs:
    name: str
    items: list[Any] = attrs.field(factory=list)
    other: Any = None

    def __attrs_post_init__(self) -> None:
        INIT_CALLS.append("attrs")


@dataclasses.dataclass
class MutableData:
    name: str
    items: list[Any] = dataclasses.field(default_factory=list)
    other: Any = None

    def __post_init__(self) -> None:
        INIT_CALLS.append("dataclass")


@dataclasses.dataclass(slots=True)
class SlottedData:
    a: int
    b: list[int]


@attrs.define(eq=False)
class Identity:
    """Mutable and hashable by identity, so it can sit in a frozenset."""

    value: int


class AppError(Exception):
    pass


@attrs.define
class AttrsError(Exception):
    code: int
    detail: list[int]


@dataclasses.dataclass
class DataError(Exception):
    code: int
    detail: list[int]


class Box(enum.Enum):
    """An enum whose members hold mutable values."""

    ITEMS = [1, 2]  # noqa: RUF012
    NESTED = (1, [2])


class Planet(enum.Enum):
    """An enum whose members hold immutable tuples."""

    EARTH = (5.97e24, 6.37e6)


class Trap(Exception):
    """Raised by user code while a value is being cloned."""


@dataclasses.dataclass(eq=False)
class HashedOriginal:
    """Hashable only with its `sealed` attribute, which is not a field, so a clone lacks it."""

    n: int

    def __hash__(self) -> int:
        if not hasattr(self, "sealed"):
            raise Trap("only the original is hashable")
        return self.n


@dataclasses.dataclass(eq=False)
class ComparedOriginal:
    """Hashes to 0; comparing raises unless it has `sealed` (not a field, so a clone lacks it)."""

    n: int

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        if not hasattr(self, "sealed"):
            raise Trap("only the original compares")
        return self is other


def sealed(value: Any) -> Any:
    value.sealed = True
    return value


@dataclasses.dataclass
class NeedsArgs:
    """Its `__new__` wants the arguments its `__init__` gets (the cloner passes none)."""

    n: int

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


@dataclasses.dataclass
class Guarded:
    """Reading its `secret` field raises."""

    secret: int

    def __getattribute__(self, name: str) -> Any:
        if name == "secret":
            raise Trap("secret")
        return super().__getattribute__(name)


class MyDateTime(datetime.datetime):
    pass


class MyDate(datetime.date):
    pass


class MyPurePosixPath(pathlib.PurePosixPath):
    pass


class MyDict(dict):  # type: ignore[type-arg]
    pass


class MyList(list):  # type: ignore[type-arg]
    pass


class MyStr(str):
    __slots__ = ()


class MyInt(int):
    pass


class Plain:
    def method(self) -> None:
        pass


def _gen():  # type: ignore[no-untyped-def]
    yield 1


# -- shared values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        2**100,
        1.5,
        float("inf"),
        3 + 4j,
        "text",
        b"bytes",
        decimal.Decimal("1.10"),
        uuid.UUID(int=7),
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        datetime.date(2024, 1, 2),
        datetime.time(3, 4),
        datetime.timedelta(seconds=5),
        datetime.UTC,
        Color.RED,
        Level.HIGH,
        Planet.EARTH,
        range(3),
        range(0, 10, 2),
        pathlib.PurePath("a/b"),
        pathlib.PurePosixPath("/tmp"),
        pathlib.PureWindowsPath("C:/tmp"),
        pathlib.Path("a/b"),
        pathlib.Path("/tmp"),
    ],
    ids=repr,
)
def test_immutable_atoms_are_shared(value: object) -> None:
    """Immutable scalars (and enum members) come back as the very same object."""
    assert structured_clone(value) is value
    assert structured_clone([value])[0] is value


def test_enum_members_stay_identical_across_a_channel() -> None:
    """Enum members are shared, so `is` comparisons keep working after a clone."""
    clone = structured_clone({"color": Color.RED, "level": Level.HIGH})
    assert clone["color"] is Color.RED
    assert clone["level"] is Level.HIGH


@pytest.mark.parametrize(
    "member", [socket.AddressFamily.AF_INET, ssl.TLSVersion.TLSv1_2], ids=["AF_INET", "TLSv1_2"]
)
def test_enum_members_of_any_module_are_shared(member: enum.Enum) -> None:
    """Enum members are shared whichever module defines the enum (socket, ssl, ...)."""
    assert structured_clone([member])[0] is member


@pytest.mark.parametrize("member", [Box.ITEMS, Box.NESTED], ids=["list", "tuple-with-a-list"])
def test_an_enum_member_holding_a_mutable_value_is_refused(member: Box) -> None:
    """Sharing such a member would share its mutable value with the receiver: refused."""
    with pytest.raises(DataCloneError, match="would be shared") as info:
        structured_clone({"box": member})
    assert info.value.value is member
    assert info.value.path == "message['box']"


def test_nan_is_shared() -> None:
    """A NaN float is shared, so it is the same object (not just an unequal NaN)."""
    nan = float("nan")
    assert structured_clone([nan])[0] is nan


# -- copied containers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [bytearray(b"abc"), [1, 2], {"a": 1}, {1, 2}, [], {}, set()],
    ids=["bytearray", "list", "dict", "set", "empty-list", "empty-dict", "empty-set"],
)
def test_mutable_containers_are_copied(value: object) -> None:
    """bytearray, list, dict and set come back equal, of the same type, but new."""
    clone = structured_clone(value)
    assert clone == value
    assert type(clone) is type(value)
    assert clone is not value


def test_copies_are_deep() -> None:
    """Nested mutable containers are copied at every level."""
    value = {"outer": [{"inner": [1, {2}]}]}
    clone = structured_clone(value)
    assert clone == value
    assert clone["outer"][0]["inner"] is not value["outer"][0]["inner"]
    assert clone["outer"][0]["inner"][1] is not value["outer"][0]["inner"][1]


def test_dict_keys_that_are_not_atomic_are_cloned() -> None:
    """A dict key of a cloneable, non-atomic type is cloned along with the values."""
    key = Identity(1)
    value = {"a": [1], key: "v", "b": [2]}
    clone = structured_clone(value)
    assert len(clone) == 3
    assert [type(k) for k in clone] == [str, Identity, str]
    [cloned_key] = [k for k in clone if isinstance(k, Identity)]
    assert cloned_key is not key
    assert cloned_key.value == 1
    assert clone[cloned_key] == "v"
    assert clone["a"] == [1]
    assert clone["a"] is not value["a"]
    assert clone["b"] is not value["b"]


def test_dict_order_is_kept() -> None:
    """A cloned dict keeps its insertion order."""
    value = {"z": 1, "a": 2, "m": 3}
    assert list(structured_clone(value)) == ["z", "a", "m"]


def test_a_bytearray_copy_is_independent() -> None:
    """Writing to the original bytearray after cloning does not change the clone."""
    value = bytearray(b"abc")
    clone = structured_clone(value)
    value[0] = ord("X")
    assert clone == bytearray(b"abc")


# -- immutable containers: shared unless something mutable is inside --------------------------


@pytest.mark.parametrize(
    "value",
    [
        (1, "a", (2, b"b")),
        frozenset({1, "a"}),
        Point(1, "y"),
        FrozenAttrs("n", (1, 2)),
        FrozenData("n", (1, 2)),
        (),
        frozenset(),
    ],
    ids=["tuple", "frozenset", "namedtuple", "frozen-attrs", "frozen-dataclass", "()", "{}"],
)
def test_immutable_containers_of_immutables_are_shared(value: object) -> None:
    """A tuple, frozenset, NamedTuple or frozen attrs/dataclass of immutables is shared."""
    assert structured_clone(value) is value


def test_a_tuple_holding_a_list_is_copied() -> None:
    """A tuple with a mutable item inside is a new tuple holding a new list."""
    value = (1, [2, 3])
    clone = structured_clone(value)
    assert clone == value
    assert type(clone) is tuple
    assert clone is not value
    assert clone[1] is not value[1]


def test_a_frozenset_holding_a_mutable_object_is_copied() -> None:
    """A frozenset with a mutable (identity-hashed) member is a new frozenset of clones."""
    member = Identity(5)
    value = frozenset({member})
    clone = structured_clone(value)
    assert type(clone) is frozenset
    assert clone is not value
    [cloned_member] = clone
    assert cloned_member is not member
    assert cloned_member.value == 5


def test_a_namedtuple_holding_a_list_is_rebuilt_as_the_same_namedtuple() -> None:
    """A NamedTuple with a mutable field is a new instance of the same class."""
    value = Point(1, [2])
    clone = structured_clone(value)
    assert type(clone) is Point
    assert clone == value
    assert clone is not value
    assert clone.y is not value.y


@pytest.mark.parametrize("cls", [FrozenAttrs, FrozenData])
def test_a_frozen_instance_holding_a_list_is_rebuilt(cls: type) -> None:
    """A frozen attrs or dataclass instance with a mutable field is rebuilt with a copy."""
    value = cls("n", [1, 2])
    clone = structured_clone(value)
    assert type(clone) is cls
    assert clone is not value
    assert clone.name == "n"
    assert clone.items == [1, 2]
    assert clone.items is not value.items


# -- attrs classes, dataclasses, exceptions ----------------------------------------------------


@pytest.mark.parametrize("cls", [MutableAttrs, MutableData])
def test_attrs_and_dataclass_instances_are_rebuilt_without_init(cls: type) -> None:
    """attrs and dataclass instances are new objects built field by field, __init__ not called."""
    value = cls("job", [1, [2]])
    INIT_CALLS.clear()
    clone = structured_clone(value)
    assert INIT_CALLS == []
    assert type(clone) is cls
    assert clone is not value
    assert clone.name == "job"
    assert clone.items == [1, [2]]
    assert clone.items is not value.items
    assert clone.items[1] is not value.items[1]


def test_a_slotted_dataclass_is_rebuilt() -> None:
    """A dataclass with __slots__ is rebuilt with its fields cloned."""
    value = SlottedData(1, [2])
    clone = structured_clone(value)
    assert type(clone) is SlottedData
    assert (clone.a, clone.b) == (1, [2])
    assert clone.b is not value.b


def test_only_fields_are_copied() -> None:
    """Instance attributes that are not fields do not survive the clone."""
    value = MutableData("x")
    value.extra = "not a field"  # type: ignore[attr-defined]
    clone = structured_clone(value)
    assert not hasattr(clone, "extra")


@pytest.mark.parametrize(
    "error",
    [ValueError("bad", [1, 2]), AppError("app", {"k": "v"}), KeyError("k"), Exception()],
    ids=["ValueError", "subclass", "KeyError", "no-args"],
)
def test_exceptions_are_rebuilt_with_cloned_args(error: Exception) -> None:
    """An exception comes back as a new one of the same type, with cloned args."""
    clone = structured_clone(error)
    assert type(clone) is type(error)
    assert clone is not error
    assert clone.args == error.args
    for original, copied in zip(error.args, clone.args, strict=True):
        if isinstance(original, list | dict):
            assert copied is not original


@pytest.mark.parametrize(
    "error",
    [trio.TooSlowError("late"), trio.BrokenResourceError("gone"), ssl.SSLError(1, "tls")],
    ids=["trio.TooSlowError", "trio.BrokenResourceError", "ssl.SSLError"],
)
def test_exceptions_of_any_module_are_rebuilt(error: Exception) -> None:
    """Exceptions are data wherever they are defined: a trio or ssl exception clones too."""
    clone = structured_clone(error)
    assert type(clone) is type(error)
    assert clone is not error
    assert clone.args == error.args


@pytest.mark.parametrize("cls", [AttrsError, DataError])
def test_an_attrs_or_dataclass_exception_keeps_its_fields_and_args(cls: type) -> None:
    """An exception that is also an attrs class or dataclass keeps its cloned fields and args."""
    error = cls(3, [1])
    clone = structured_clone(error)
    assert type(clone) is cls
    assert clone.args == error.args
    assert clone.code == 3
    assert clone.detail == [1]
    assert clone.detail is not error.detail


def test_an_exception_group_is_rebuilt_with_cloned_members() -> None:
    """An ExceptionGroup comes back as a new group of new member exceptions."""
    member = ValueError([1])
    group = ExceptionGroup("several", [member])
    clone = structured_clone(group)
    assert type(clone) is ExceptionGroup
    assert clone is not group
    assert clone.message == "several"
    [cloned_member] = clone.exceptions
    assert type(cloned_member) is ValueError
    assert cloned_member is not member
    assert cloned_member.args == ([1],)
    assert cloned_member.args[0] is not member.args[0]


def test_an_oserror_clone_keeps_the_fields_its_args_carry() -> None:
    """An OSError rebuilt from its args (errno, strerror) has the same errno, strerror and str."""
    error = FileNotFoundError(2, "No such file")
    clone = structured_clone(error)
    assert type(clone) is FileNotFoundError
    assert clone.args == (2, "No such file")
    assert (clone.errno, clone.strerror) == (2, "No such file")
    assert str(clone) == str(error)


def test_an_exception_keeps_its_instance_attributes() -> None:
    """Attributes set outside args (CalledProcessError's returncode, cmd, ...) are cloned."""
    error = subprocess.CalledProcessError(2, ["ls", "nowhere"], output=b"out")
    clone = structured_clone(error)
    assert str(clone) == str(error)
    assert (clone.returncode, clone.cmd, clone.output) == (2, ["ls", "nowhere"], b"out")
    assert clone.cmd is not error.cmd


def test_an_exception_keeps_a_copy_of_its_notes() -> None:
    """`__notes__` is cloned with the other instance attributes."""
    error = ValueError("bad")
    error.add_note("while parsing line 3")
    clone = structured_clone(error)
    assert clone.__notes__ == ["while parsing line 3"]
    assert clone.__notes__ is not error.__notes__


def test_an_exception_attribute_that_cannot_be_cloned_is_refused() -> None:
    """An uncloneable attribute is a DataCloneError whose path names the attribute."""
    error = AppError("failed")
    error.callback = print  # type: ignore[attr-defined]
    with pytest.raises(DataCloneError) as info:
        structured_clone({"error": error})
    assert info.value.path == "message['error'].callback"
    assert info.value.value is print


def test_a_cycle_through_an_exception_attribute_is_preserved() -> None:
    """An exception that refers to itself through an attribute still does in the clone."""
    error = AppError("loop")
    error.me = error  # type: ignore[attr-defined]
    clone = structured_clone(error)
    assert clone.me is clone  # type: ignore[attr-defined]


def test_the_library_exceptions_keep_their_attributes() -> None:
    """TooManyRestartsError and DataCloneError keep every attribute their callers read."""
    gave_up = TooManyRestartsError("gave up", path="root/db", max_restarts=3, within=5.0)
    refused = DataCloneError("cannot clone it", value=[1], path="message[0]")
    gave_up_clone, refused_clone = structured_clone([gave_up, refused])
    assert (gave_up_clone.path, gave_up_clone.max_restarts, gave_up_clone.within) == (
        "root/db",
        3,
        5.0,
    )
    assert (refused_clone.path, refused_clone.reason, refused_clone.value) == (
        "message[0]",
        "cannot clone it",
        [1],
    )
    assert refused_clone.value is not refused.value
    assert str(refused_clone) == str(refused)


def test_a_data_clone_error_whose_value_cannot_be_cloned_clones_without_it() -> None:
    """A DataCloneError's value is often uncloneable by definition: the clone's is None."""
    refused = DataCloneError("cannot clone a function", value=print, path="message.f")
    clone = structured_clone(refused)
    assert clone.value is None
    assert (clone.path, clone.reason, str(clone)) == (refused.path, refused.reason, str(refused))


def test_a_value_left_out_of_a_data_clone_error_is_still_refused_elsewhere() -> None:
    """Leaving an uncloneable value out of a DataCloneError leaves no half-made copy behind."""
    bad = [1, print]
    refused = DataCloneError("cannot clone it", value=bad)
    with pytest.raises(DataCloneError) as info:
        structured_clone({"error": refused, "bad": bad})
    assert info.value.path == "message['bad'][1]"


def test_an_exception_clone_drops_traceback_and_cause() -> None:
    """Only args survive: the clone has no traceback and no cause."""
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer") from inner
    except ValueError as caught:
        clone = structured_clone(caught)
    assert clone.args == ("outer",)
    assert clone.__traceback__ is None
    assert clone.__cause__ is None


@pytest.mark.parametrize(
    "error",
    [KeyboardInterrupt(), SystemExit(1), GeneratorExit()],
    ids=["KeyboardInterrupt", "SystemExit", "GeneratorExit"],
)
def test_base_exceptions_that_are_not_exceptions_are_refused(error: BaseException) -> None:
    """A BaseException that is not an Exception (a signal, an exit) is refused."""
    with pytest.raises(DataCloneError) as info:
        structured_clone({"error": error})
    assert info.value.value is error
    assert info.value.path == "message['error']"


# -- refused values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(MyDict(), id="dict-subclass"),
        pytest.param(collections.OrderedDict(), id="OrderedDict"),
        pytest.param(collections.defaultdict(list), id="defaultdict"),
        pytest.param(collections.Counter(), id="Counter"),
        pytest.param(MyList(), id="list-subclass"),
        pytest.param(MyStr("s"), id="str-subclass"),
        pytest.param(MyInt(1), id="int-subclass"),
    ],
)
def test_subclasses_of_builtins_are_refused(value: object) -> None:
    """Subclasses of the built-in cloneable types are refused, not silently downgraded."""
    with pytest.raises(DataCloneError) as info:
        structured_clone([value])
    assert info.value.value is value
    assert info.value.path == "message[0]"


@pytest.mark.parametrize(
    ("value", "base"),
    [
        (MyDateTime(2024, 1, 2), "datetime"),
        (MyDate(2024, 1, 2), "date"),
        (MyPurePosixPath("/tmp"), "PurePosixPath"),
        (collections.OrderedDict(), "dict"),
        (MyStr("s"), "str"),
    ],
    ids=["datetime", "date", "PurePosixPath", "OrderedDict", "str"],
)
def test_a_subclass_error_names_the_nearest_builtin_base(value: object, base: str) -> None:
    """The error names the built-in type the value's class derives from most directly."""
    with pytest.raises(DataCloneError, match=f"only {base} itself is cloneable"):
        structured_clone(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(lambda: None, id="lambda"),
        pytest.param(len, id="builtin"),
        pytest.param(Plain().method, id="method"),
        pytest.param(functools.partial(print), id="partial"),
        pytest.param(_gen(), id="generator"),
        pytest.param(threading.Lock(), id="thread-lock"),
        pytest.param(threading.Event(), id="thread-event"),
        pytest.param(sys, id="module"),
        pytest.param(Plain, id="class"),
        pytest.param(Plain(), id="plain-object"),
        pytest.param(object(), id="object"),
        pytest.param(memoryview(b"x"), id="memoryview"),
        pytest.param(collections.deque(), id="deque"),
        pytest.param(fractions.Fraction(1, 3), id="Fraction"),
        pytest.param(trio.Lock(), id="trio.Lock"),
        pytest.param(trio.Semaphore(1), id="trio.Semaphore"),
        pytest.param(trio.CapacityLimiter(1), id="trio.CapacityLimiter"),
        pytest.param(trio.open_memory_channel(0)[0], id="trio.MemorySendChannel"),
        pytest.param(trio.Event(), id="trio.Event"),
        pytest.param(trio.CancelScope(), id="trio.CancelScope"),
    ],
)
def test_uncloneable_values_are_refused(value: object) -> None:
    """Functions, generators, locks, modules, classes, trio objects, plain objects: refused."""
    with pytest.raises(DataCloneError) as info:
        structured_clone({"value": value})
    assert info.value.path.startswith("message['value']")


def test_the_error_message_names_path_reason_and_value() -> None:
    """DataCloneError's message is 'path: cannot clone a '<type>' object (<repr>)'."""
    job = lambda: None  # noqa: E731
    with pytest.raises(DataCloneError) as info:
        structured_clone({"jobs": [1, 2, 3, job]})
    assert info.value.path == "message['jobs'][3]"
    assert info.value.value is job
    assert str(info.value).startswith("message['jobs'][3]: cannot clone a 'function' object (")
    assert str(info.value).endswith(")")


@pytest.mark.parametrize(
    ("message", "path"),
    [
        ({"k": {print}}, "message['k'] (a set member)"),
        ({print: 1}, "message (a key: <built-in function print>)"),
        (MutableData("x", other=print), "message.other"),
        (Point(1, print), "message.y"),
        (ValueError("x", print), "message.args[1]"),
        ((1, [2, print]), "message[1][1]"),
    ],
    ids=["set-member", "dict-key", "dataclass-field", "namedtuple-field", "exception-arg", "tuple"],
)
def test_the_path_locates_the_value(message: object, path: str) -> None:
    """The path is a Python expression rooted at 'message' that leads to the refused value."""
    with pytest.raises(DataCloneError) as info:
        structured_clone(message)
    assert info.value.path == path
    assert info.value.value is print


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({sealed(HashedOriginal(1))}, id="set-member-hash"),
        pytest.param(frozenset({sealed(HashedOriginal(1))}), id="frozenset-member-hash"),
        pytest.param({sealed(HashedOriginal(1)): "v"}, id="dict-key-hash"),
        pytest.param({sealed(ComparedOriginal(1)), sealed(ComparedOriginal(2))}, id="set-eq"),
        pytest.param(NeedsArgs(1), id="__new__"),
        pytest.param(Strict(1, [2]), id="_make"),
        pytest.param(Guarded(1), id="getattr"),
    ],
)
def test_an_error_raised_by_user_code_while_cloning_is_a_data_clone_error(value: object) -> None:
    """A hash, an __eq__, a __new__, a _make or a getattr that raises: DataCloneError, with
    the path of the value being cloned and the user's exception as its cause."""
    with pytest.raises(DataCloneError) as info:
        structured_clone({"k": value})
    assert info.value.path == "message['k']"
    assert info.value.value is value
    assert type(info.value.__cause__) is Trap
    assert "Trap" in info.value.reason


def test_an_error_raised_by_user_code_leaves_nothing_detached() -> None:
    """The clone fails as a whole: the transfer list stays attached."""
    buf = ArrayBuffer(2)
    with pytest.raises(DataCloneError):
        structured_clone([buf, {sealed(HashedOriginal(1))}], transfer=[buf])
    assert not buf.detached


def test_the_clone_of_a_restarted_actors_arguments_fails_with_a_data_clone_error() -> None:
    """The re-clone a restart makes of spawn's arguments reports failures as DataCloneError."""
    with pytest.raises(DataCloneError) as info:
        _clone.clone_replacing((1, {sealed(HashedOriginal(1))}), {}, "args")
    assert info.value.path == "args[1]"
    assert type(info.value.__cause__) is Trap


def test_a_refused_value_leaves_nothing_detached() -> None:
    """A clone that fails detaches nothing from the transfer list."""
    buf = ArrayBuffer(2)
    with pytest.raises(DataCloneError):
        structured_clone([buf, print], transfer=[buf])
    assert not buf.detached


def test_structured_clone_with_a_non_iterable_transfer_is_type_error() -> None:
    """structured_clone(transfer=<not iterable>) raises TypeError, not DataCloneError."""
    with pytest.raises(TypeError) as info:
        structured_clone([1], transfer=5)  # type: ignore[arg-type]
    assert not isinstance(info.value, DataCloneError)


# -- cycles and shared references --------------------------------------------------------------


def test_a_self_referencing_list_is_preserved() -> None:
    """A list that contains itself clones to a new list that contains itself."""
    value: list[Any] = [1]
    value.append(value)
    clone = structured_clone(value)
    assert clone is not value
    assert clone[1] is clone


def test_a_self_referencing_dict_is_preserved() -> None:
    """A dict that contains itself clones to a new dict that contains itself."""
    value: dict[str, Any] = {}
    value["me"] = value
    clone = structured_clone(value)
    assert clone["me"] is clone
    assert clone is not value


def test_shared_references_stay_shared() -> None:
    """Two references to one mutable object clone to two references to one new object."""
    shared = [1]
    value = {"a": shared, "b": [shared], "c": (shared,)}
    clone = structured_clone(value)
    assert clone["a"] is clone["b"][0] is clone["c"][0]
    assert clone["a"] is not shared


def test_a_cycle_through_a_tuple_is_preserved() -> None:
    """A cycle through an immutable tuple and a mutable list is preserved."""
    inner: list[Any] = []
    value = (inner,)
    inner.append(value)
    clone = structured_clone(value)
    assert clone is not value
    assert clone[0][0] is clone


def test_a_cycle_through_attrs_instances_is_preserved() -> None:
    """attrs instances that refer to each other keep doing so in the clone."""
    a, b = MutableAttrs("a"), MutableAttrs("b")
    a.other, b.other = b, a
    clone = structured_clone(a)
    assert clone.other.other is clone
    assert clone.other is not b


def test_a_cycle_through_a_frozen_dataclass_is_preserved() -> None:
    """A frozen dataclass holding a list that holds the instance keeps the cycle."""
    box: list[Any] = []
    value = FrozenData("n", box)
    box.append(value)
    clone = structured_clone(value)
    assert clone is not value
    assert clone.items[0] is clone


def test_a_cycle_through_an_exception_is_preserved() -> None:
    """An exception whose args hold a list holding the exception keeps the cycle."""
    box: list[Any] = []
    error = ValueError(box)
    box.append(error)
    clone = structured_clone(error)
    assert clone.args[0][0] is clone


# -- transferables inside the message ----------------------------------------------------------


def test_a_listed_buffer_in_the_message_is_the_moved_buffer() -> None:
    """A transferred buffer appears in the clone as one new buffer wherever it was mentioned."""
    buf = ArrayBuffer(b"data")
    clone = structured_clone({"a": buf, "b": [buf]}, transfer=[buf])
    assert clone["a"] is clone["b"][0]
    assert clone["a"] is not buf
    assert bytes(clone["a"]) == b"data"
    assert buf.detached


async def test_a_listed_port_in_the_message_arrives_as_event_ports_entry() -> None:
    """A port listed and mentioned arrives as the same object as event.ports[i]."""
    channel, a, b = MessageChannel(), MessageChannel(), MessageChannel()
    channel.port1.post_message({"second": b.port1, "first": (a.port1,)}, [a.port1, b.port1])
    event = await channel.port2.receive()
    assert event.data["first"][0] is event.ports[0]
    assert event.data["second"] is event.ports[1]
    close_ports(channel, a, b)


def test_an_unlisted_port_in_the_message_is_refused() -> None:
    """A MessagePort in the message but not in the transfer list is a DataCloneError."""
    channel = MessageChannel()
    with pytest.raises(DataCloneError) as info:
        structured_clone({"port": channel.port1})
    assert info.value.value is channel.port1
    assert info.value.path == "message['port']"
    assert channel.port1.statistics().entangled
    close_ports(channel)


def test_an_unlisted_buffer_is_copied() -> None:
    """An ArrayBuffer in the message but not listed arrives as an independent copy."""
    buf = ArrayBuffer(b"abc")
    clone = structured_clone({"buf": buf})["buf"]
    assert type(clone) is ArrayBuffer
    assert clone is not buf
    assert bytes(clone) == b"abc"
    assert not buf.detached
    with clone.view() as view:
        view[0] = ord("X")
    assert bytes(buf) == b"abc"


def test_a_shared_unlisted_buffer_is_copied_once() -> None:
    """One unlisted buffer mentioned twice is one copy mentioned twice."""
    buf = ArrayBuffer(1)
    clone = structured_clone([buf, buf])
    assert clone[0] is clone[1]
    assert clone[0] is not buf


# -- classes made at run time ------------------------------------------------------------------

CLASS_KINDS = ["namedtuple", "dataclass", "attrs", "exception", "enum", "refused"]


def _make_class(kind: str) -> tuple[type, object]:
    """A new class of the given kind, and a value of it with something mutable inside."""
    cls: Any
    if kind == "namedtuple":
        cls = collections.namedtuple("Made", "a b")
        return cls, cls(1, [2])
    if kind == "dataclass":
        cls = dataclasses.make_dataclass("Made", ["a", "b"])
        return cls, cls(1, [2])
    if kind == "attrs":
        cls = attrs.make_class("Made", ["a", "b"])
        return cls, cls(1, [2])
    if kind == "exception":
        cls = type("Made", (Exception,), {})
        return cls, cls(1, [2])
    if kind == "enum":
        cls = enum.Enum("Made", "A B")
        return cls, cls.A
    cls = type("Made", (), {})
    return cls, cls()


def _clone_made(kind: str) -> weakref.ref[type]:
    """Clone a value of a new class of `kind` (refused or not); a weak reference to the class."""
    cls, value = _make_class(kind)
    try:
        structured_clone([value])
    except DataCloneError:
        assert kind == "refused"
    return weakref.ref(cls)


@pytest.mark.parametrize("kind", CLASS_KINDS)
def test_a_class_seen_by_the_cloner_can_be_collected(kind: str) -> None:
    """Cloning a value does not keep its class alive once nothing else refers to it."""
    made = _clone_made(kind)
    gc.collect()
    assert made() is None


def test_the_handler_cache_does_not_grow_with_classes_that_died() -> None:
    """A thousand classes made, cloned and dropped leave the cloner's cache as it was."""
    structured_clone([_make_class(kind)[1] for kind in CLASS_KINDS[:-1]])  # warm up the cache
    gc.collect()
    before = _cache_sizes()
    made = [_clone_made(CLASS_KINDS[i % len(CLASS_KINDS)]) for i in range(1_000)]
    gc.collect()
    assert all(ref() is None for ref in made)
    assert _cache_sizes() == before


def _cache_sizes() -> tuple[int, ...]:
    return len(_clone._HANDLERS), len(_clone._CLASS_HANDLERS), len(_clone._CLASS_REFS)


# -- properties --------------------------------------------------------------------------------

_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=25,
)


def _mutable_ids(value: object) -> set[int]:
    found: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            found.add(id(item))
            stack.extend(item)
        elif isinstance(item, dict):
            found.add(id(item))
            stack.extend(item.values())
    return found


@given(_json_like)
def test_json_like_values_clone_equal(value: object) -> None:
    """Any JSON-like value clones to an equal value."""
    assert structured_clone(value) == value


@given(_json_like)
def test_a_clone_shares_no_list_or_dict_with_the_original(value: object) -> None:
    """No list or dict object of the original appears in its clone."""
    clone = structured_clone(value)
    assert _mutable_ids(value).isdisjoint(_mutable_ids(clone))


def test_a_message_nested_too_deeply_is_a_data_clone_error() -> None:
    """Nesting past the recursion limit is a DataCloneError, and nothing is detached."""
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    channel, buffer = MessageChannel(), ArrayBuffer(4)
    with pytest.raises(DataCloneError, match="nested too deeply"):
        channel.port1.post_message(deep, transfer=[buffer])
    with pytest.raises(DataCloneError, match="nested too deeply"):
        channel.port1.post_message(deep)
    assert not buffer.detached
    assert channel.port2.statistics().queued == 0
    close_ports(channel)
