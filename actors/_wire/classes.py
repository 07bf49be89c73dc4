"""Classes on the wire: which kinds travel, the name each travels under, and finding a class
again by that name among the modules already imported (never importing one).

A class travels as `(module, qualname)`. The receiver looks the module up in `sys.modules`
only, walks the qualified name through namespaces only (no `getattr`, so no module
`__getattr__` and no descriptor runs), and takes the class only if it is of a kind structured
clone rebuilds: an attrs class or dataclass, a named tuple, an enum, an exception.
"""

from __future__ import annotations

import sys
import types
import weakref
from typing import Any, Final, cast

import attrs

from .. import _clone
from .leaves import Inexpressible

__all__ = [
    "ENUM",
    "EXCEPTION",
    "FIELDS",
    "FROZEN",
    "KIND_NAMES",
    "NAMEDTUPLE",
    "REFUSED",
    "TRANSFERABLE",
    "ClassInfo",
    "info",
    "resolve",
    "set_main_module",
]

# Kinds of class, as CLASS tokens name them.
FIELDS: Final = 0  # an attrs class or dataclass, not frozen: rebuilt, then its fields set
FROZEN: Final = 1  # a frozen one: built once its fields are
NAMEDTUPLE: Final = 2
EXCEPTION: Final = 3
ENUM: Final = 4
# Kinds never named on the wire.
TRANSFERABLE: Final = 5  # MessagePort, ArrayBuffer: they travel by transfer (or a copy)
REFUSED: Final = 6  # structured clone refuses its instances

KIND_NAMES: Final = (
    "a fields class",
    "a frozen fields class",
    "a named tuple",
    "an exception",
    "an enum",
)

MAIN: Final = "__main__"
_main = [MAIN]  # the name this process's main script runs under (see set_main_module)


@attrs.frozen
class ClassInfo:
    """What the wire knows about one class, decided once while the class lives."""

    kind: int
    fields: tuple[str, ...] = ()
    """Field names (attrs, dataclass), or `_fields` (named tuple), in order."""
    name: tuple[str, str] = ("", "")
    """`(module, qualname)` as sent; `__main__` for this process's main script."""
    refusal: str | None = None
    """Why its instances cannot cross: clone's reason (kind REFUSED), or why the wire cannot
    name the class (any kind: the sender checks what clone checks first)."""
    risky: bool = False
    """Whether rebuilding an instance runs code of the class (a `__new__`, a `_make`), so the
    sender checks with a structured clone that it can be rebuilt."""
    group: bool = False
    """An exception group: as clone does, registered once its arguments are rebuilt."""


def set_main_module(name: str) -> None:
    """Name the module this process runs the parent's main script as (in a child started by
    spawn, `"__mp_main__"`). Its classes are sent as `__main__.X`, and a `__main__.X` received
    is looked up in it: so both processes mean the same script."""
    _main[0] = name
    _INFOS.clear()
    _REFS.clear()
    _RESOLVED.clear()


def lookup(module: str, qualname: str) -> object:
    """What `module.qualname` names among the modules already imported, or `None`; found
    through namespaces only, from a module through classes."""
    obj: object = sys.modules.get(module)
    if not isinstance(obj, types.ModuleType):
        return None
    for part in qualname.split("."):
        if not isinstance(obj, types.ModuleType | type):
            return None
        obj = vars(obj).get(part)
    return obj


def resolve(module: str, qualname: str) -> tuple[type, ClassInfo]:
    """The class a frame names, and its info. Raises `LookupError` when this process has no
    such class (its module not imported, or no class by that name)."""
    local = _main[0] if module == MAIN else module
    found = _RESOLVED.get((local, qualname))
    if found is not None:  # still so if sys.modules has the module, and it the class
        known, where = found[0](), sys.modules.get(local)
        if known is not None and where is found[1]() and vars(where).get(found[2]) is found[3]():
            return known, found[4]
    if local not in sys.modules:
        raise LookupError(f"class {module}.{qualname}: module {module!r} is not imported here")
    cls = lookup(local, qualname)
    if not isinstance(cls, type):
        raise LookupError(f"there is no class {module}.{qualname} here")
    top = qualname.partition(".")[0]
    where = sys.modules[local]
    found_info = info(cls)
    _RESOLVED[local, qualname] = (
        weakref.ref(cls),
        weakref.ref(where),
        top,
        weakref.ref(vars(where)[top]),
        found_info,
    )
    return cls, found_info


# What resolve found, by (module, qualname): weakly (a class and its module can be collected),
# and checked on each use (the same module in sys.modules, holding the same object under the
# qualified name's first part). Only names of classes found get here: it grows only with the
# classes this process receives.
_RESOLVED: dict[
    tuple[str, str],
    tuple[weakref.ref[type], weakref.ref[Any], str, weakref.ref[Any], ClassInfo],
] = {}


# By `id` while the class lives, as _clone caches its handlers: classes made at run time can
# be collected, and the weak reference's callback drops the entry before the id is reused.
_INFOS: dict[int, ClassInfo] = {}
_REFS: dict[int, weakref.KeyedRef[int, type]] = {}


def _forget(
    ref: weakref.KeyedRef[int, type],
    infos: dict[int, ClassInfo] = _INFOS,
    refs: dict[int, weakref.KeyedRef[int, type]] = _REFS,
) -> None:
    infos.pop(ref.key, None)
    refs.pop(ref.key, None)


def info(cls: type) -> ClassInfo:
    """How instances of `cls` cross, decided once while `cls` lives."""
    found = _INFOS.get(id(cls))
    if found is None:
        found = _decide(cls)
        key = id(cls)
        _REFS[key] = weakref.KeyedRef(cls, _forget, key)
        _INFOS[key] = found
    return found


def _decide(cls: type) -> ClassInfo:
    """Ask structured clone how it treats `cls` (one source of truth), then name it."""
    handler = _clone._handler_for(cls)
    made_by = getattr(handler, "__qualname__", "")
    c = cast(Any, cls)
    if handler is _clone._exception or made_by.startswith("_exception_with_fields."):
        kind, fields = EXCEPTION, _clone._field_names(cls)
        risky = isinstance(c.__new__, types.FunctionType)
        group = issubclass(cls, BaseExceptionGroup)
        return _named(cls, ClassInfo(kind, fields, risky=risky, group=group))
    if handler is _clone._enum_member:
        return _named(cls, ClassInfo(ENUM))
    if handler is _clone._transferable:
        return ClassInfo(TRANSFERABLE)
    if made_by.startswith("_fields_handler."):
        if attrs.has(cls):  # as _clone._handler_for tells frozen classes
            frozen = getattr(c.__setattr__, "__name__", "") == "_frozen_setattrs"
        else:
            frozen = bool(c.__dataclass_params__.frozen)
        kind = FROZEN if frozen else FIELDS
        risky = c.__new__ is not object.__new__
        return _named(cls, ClassInfo(kind, _clone._field_names(cls), risky=risky))
    if handler is _clone._namedtuple:
        make = getattr(c._make, "__func__", None)
        risky = getattr(make, "__module__", None) != "collections"  # _make overridden
        return _named(cls, ClassInfo(NAMEDTUPLE, tuple(c._fields), risky=risky))
    try:
        handler(cast(Any, None), None)  # one of clone's refusals: it raises with the reason
    except _clone._Failure as f:
        return ClassInfo(REFUSED, refusal=f.reason)
    raise AssertionError(f"structured clone has a handler the wire does not know: {made_by}")


def _named(cls: type, found: ClassInfo) -> ClassInfo:
    """`found` with the name `cls` travels under, or with why it cannot be named."""
    module, qualname = cls.__module__, cls.__qualname__
    try:
        if "<locals>" in qualname:
            raise Inexpressible("it is defined inside a function")
        if lookup(module, qualname) is not cls:
            raise Inexpressible(f"it cannot be found as {module}.{qualname}")
    except Inexpressible as e:
        refusal = (
            f"cannot send a {qualname!r} object to another process: the wire names a class "
            f"by its module and qualified name, and {e}"
        )
        return attrs.evolve(found, refusal=refusal)
    return attrs.evolve(found, name=(MAIN if module == _main[0] else module, qualname))
