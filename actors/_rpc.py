"""RPC over a port, in Comlink's model: `expose(obj, port)` serves, `wrap(port)` calls.

Every call is an `ask`: the request `(method, args, kwargs)` travels with its own reply port,
so calls never wait on each other at the caller, a reply can only reach its own call, and a
call whose caller gave up (cancelled) has its reply port closed, which the exposed side sees
as `close` and which cancels the method if it is still running. Arguments and results are
structured-cloned; `transfer(value, [...])` moves ports and buffers instead (Comlink's
`transfer`), and `proxy(obj)` passes an object or function by reference, as a port whose other
end serves it (Comlink's `proxy`).

The rules (`docs/explanation/services.md` states them for users):

- Only public attributes (no leading `_`) that are callable can be called.
- An exception raised by the method is raised at the caller: as its own type when it can be
  cloned (with the remote traceback as a note), as `RemoteError` otherwise. The exposed side
  keeps serving.
- A closed or dead exposed side fails every pending call with `trio.BrokenResourceError`.
- `transfer` and `proxy` mark a value given directly as an argument or returned as the
  result, not one nested in a container (as with Comlink).
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, final, overload

import attrs
import trio

from ._ask import ask
from ._exceptions import DataCloneError, RemoteError
from ._log import summary
from ._overdue import WARN_AFTER
from ._ports import MessageChannel, MessagePort

__all__ = ["Proxy", "Transfer", "expose", "proxy", "serve_calls", "transfer", "wrap"]

T = TypeVar("T")


@final
class Transfer:
    """A value whose ports and buffers move with it: made by [`transfer`][actors.transfer]."""

    __slots__ = ("transferables", "value")

    def __init__(self, value: object, transferables: Iterable[object]) -> None:
        self.value = value
        self.transferables = list(transferables)

    def __repr__(self) -> str:
        return f"<Transfer {self.value!r} moving {len(self.transferables)}>"


def transfer(value: T, transferables: Iterable[object]) -> T:
    """Mark `value` so that a `wrap` call (as an argument) or an exposed method (as its result)
    moves `transferables` with it instead of failing to copy them (Comlink's `transfer`).

    `await kv.attach(actors.transfer(port, [port]))` moves `port` to the exposed side, as
    `post_message(port, [port])` would.

    Args:
        value: the argument or result.
        transferables: the [`MessagePort`][actors.MessagePort] and
            [`ArrayBuffer`][actors.ArrayBuffer] objects in `value` to move.

    Returns:
        A marker standing for `value` (typed as `value`'s type, so calls type-check).
    """
    return Transfer(value, transferables)  # type: ignore[return-value]


@final
class _ByReference:
    """A value to pass by reference: made by [`proxy`][actors.proxy]."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj


def proxy(obj: T) -> T:
    """Pass `obj` by reference: the other side gets a proxy that calls back into it
    (Comlink's `proxy`).

    Use it for callbacks: `await service.subscribe(actors.proxy(on_event))`. `obj` travels as
    a port whose other end serves it here, in a message handler of this trio run (each call
    runs one at a time, in order); the remote side calls it with `await cb(...)` or
    `await cb.method(...)`. It is served until the remote side closes its end (or its proxy
    is garbage-collected).

    Args:
        obj: a function (sync or async) or an object with public methods.

    Returns:
        A marker standing for `obj` (typed as `obj`'s type).
    """
    return _ByReference(obj)  # type: ignore[return-value]


@final
@attrs.frozen
class _Reference:
    """What travels for a value passed by reference: the port to call it through."""

    port: MessagePort


# -- the calling side ---------------------------------------------------------------------


def _outgoing(value: object, moves: list[object]) -> object:
    """The wire form of an argument or a result: `transfer` and `proxy` markers unwrapped."""
    cls = type(value)
    if cls is Transfer:
        moves.extend(value.transferables)  # type: ignore[attr-defined]
        return value.value  # type: ignore[attr-defined]
    if cls is _ByReference:
        channel = MessageChannel()
        assert channel.port2._core is not None
        channel.port2._core.collectable = True  # it lives as long as the proxy at the other end
        _serve_by_handler(value.obj, channel.port2)  # type: ignore[attr-defined]
        moves.append(channel.port1)
        return _Reference(channel.port1)
    return value


def _incoming(value: object, warn_after: float | None) -> object:
    return _by_reference(value, warn_after) if type(value) is _Reference else value


def _by_reference(reference: Any, warn_after: float | None) -> Proxy:
    """The proxy for a value passed by reference: it owns its port, so dropping it is how it
    is released (its port is collected, the other side sees `close`), with no warning."""
    port: MessagePort = reference.port
    if port._core is not None:
        port._core.collectable = True
    return Proxy(port, warn_after)


_MARKERS = frozenset({Transfer, _ByReference})


_MARKERS = frozenset({Transfer, _ByReference})


@final
class _Method:
    """`proxy.name`: awaiting a call of it calls `name` on the exposed object."""

    __slots__ = ("_name", "_port", "_warn_after")

    def __init__(self, port: MessagePort, name: str | None, warn_after: float | None) -> None:
        self._port = port
        self._name = name
        self._warn_after = warn_after

    async def __call__(self, *args: object, **kwargs: object) -> Any:
        moves: list[object] = []
        markers = _MARKERS
        for a in args:
            if type(a) in markers:
                args = tuple([_outgoing(a, moves) for a in args])
                break
        if kwargs:
            kwargs = {k: _outgoing(v, moves) for k, v in kwargs.items()}
        message = (self._name, args, kwargs or None)  # no keywords: nothing to clone there
        warn_after = self._warn_after
        reply = await ask(self._port, message, transfer=moves or None, warn_after=warn_after)
        if reply[0] == "ok":
            value = reply[1]
            return _by_reference(value, warn_after) if type(value) is _Reference else value
        if reply[0] == "raise":
            exc: BaseException = reply[1]
            exc.add_note(f"raised by the exposed side; its traceback:\n{reply[2]}")
            raise exc
        raise RemoteError(reply[1], reply[2], reply[3])

    def __repr__(self) -> str:
        return f"<remote method {self._name!r} over {self._port!r}>"


@final
class Proxy:
    """What [`wrap`][actors.wrap] returns: `await proxy.method(*args)` calls the exposed
    object's method across the port, and `await proxy(*args)` calls an exposed function.

    Any public attribute name is a method of the remote object (checked there, at the call).
    Names starting with `_` are not forwarded.
    """

    def __init__(self, port: MessagePort, warn_after: float | None = WARN_AFTER) -> None:
        self._port = port
        self._warn_after = warn_after

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("_"):
            raise AttributeError(name)
        method = _Method(self._port, name, self._warn_after)
        self.__dict__[name] = method  # the next lookup of this name finds it at once
        return method

    def __call__(self, *args: object, **kwargs: object) -> Any:
        return _Method(self._port, None, self._warn_after)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Proxy over {self._port!r}>"


# `protocol` is typed as a callable returning T, not as type[T]: mypy refuses a Protocol class
# where type[T] is expected (type-abstract), and a class is a callable returning its instances.
@overload
def wrap(port: MessagePort, *, warn_after: float | None = ...) -> Any: ...
@overload
def wrap(port: MessagePort, protocol: Callable[..., T], *, warn_after: float | None = ...) -> T: ...
def wrap(
    port: MessagePort,
    protocol: Callable[..., Any] | None = None,
    *,
    warn_after: float | None = WARN_AFTER,
) -> Any:
    """Call what is exposed on `port`'s peer: `await proxy.method(*args)` (Comlink's `wrap`).

    Each call is an [`ask`][actors.ask]: arguments are structured-cloned (wrap ports and
    buffers to move in [`transfer`][actors.transfer], objects to pass by reference in
    [`proxy`][actors.proxy]), and the result comes back as a clone. Calls made at once run at
    once; cancelling a call closes its reply port, which cancels the method on the exposed
    side if it is still running there.

    Args:
        port: a port whose peer is served by [`expose`][actors.expose] (or by
            `Incoming.expose`), e.g. what [`connect`][actors.connect] returned.
        protocol: a class (typically a `typing.Protocol` with async methods) describing the
            remote object, for type checkers only: `wrap(port, KV)` is typed as `KV`.
        warn_after: a call still unanswered after this many seconds is reported once as an
            `ask_unanswered` warning; `None` never reports it.

    Returns:
        The proxy.

    Raises:
        TypeError: `port` is not a [`MessagePort`][actors.MessagePort].

    A call raises what the method raised (as its own type when it can be cloned, otherwise
    [`RemoteError`][actors.RemoteError]), `trio.BrokenResourceError` if the exposed side is
    closed or dies before it answers, `trio.ClosedResourceError` if `port` was closed here,
    and `DataCloneError` if an argument cannot be cloned (nothing was sent).
    """
    if not isinstance(port, MessagePort):
        raise TypeError(f"wrap() takes a MessagePort, not {type(port).__name__}")
    return Proxy(port, warn_after)


# -- the exposed side ---------------------------------------------------------------------


def _target(obj: object, name: object) -> Callable[..., Any]:
    if name is None:
        if not callable(obj):
            raise TypeError(f"the exposed {type(obj).__name__} object is not callable")
        return obj
    if not isinstance(name, str) or not name or name.startswith("_"):
        raise AttributeError(f"{name!r} is not a public method of the exposed object")
    method = getattr(obj, name)
    if not callable(method):
        raise AttributeError(f"{type(obj).__name__}.{name} is not a method")
    return method  # type: ignore[no-any-return]


def _answer(event: Any, result: object) -> None:
    moves: list[object] = []
    value = _outgoing(result, moves) if type(result) in _MARKERS else result
    try:
        event.reply(("ok", value), transfer=moves or None)
    except DataCloneError as exc:  # nothing was sent: the caller gets the error instead
        _answer_error(event, exc)


def _answer_error(event: Any, exc: Exception) -> None:
    text = "".join(traceback.format_exception(exc))
    try:
        event.reply(("raise", exc, text))
    except DataCloneError:  # nothing was sent: say what can be said about it
        kind = type(exc)
        name = f"{kind.__module__}.{kind.__qualname__}"
        message = summary(exc) or ""
        message = message.partition(": ")[2] if ": " in message else ""
        event.reply(("remote", name, message, text))


_NO_KEYWORDS: dict[str, Any] = {}  # never changed: a method sees `**{}`


def _unpack(data: object) -> tuple[object, tuple[Any, ...], dict[str, Any]]:
    if type(data) is tuple and len(data) == 3 and type(data[1]) is tuple:
        kwargs = data[2]
        if kwargs is None:
            return data[0], data[1], {}
        if type(kwargs) is dict:
            return data
    raise TypeError("not a call made by wrap(): expected (method, args, kwargs)")


def _serve_call(
    obj: object, event: Any, warn_after: float | None, lock: trio.Lock | None
) -> Awaitable[None] | None:
    """Run one call and answer it; `None` when that is done (a sync method), else an
    awaitable that finishes it (an async method, or a lock held by another call).

    The call's reply port is closed however it ends, so a call that is not answered
    (cancelled with `expose`, say) fails at once with `BrokenResourceError` instead of
    hanging.
    """
    if not event.ports:
        return None  # not a call (no reply port): nothing to answer
    try:
        data = event.data
        if type(data) is tuple and len(data) == 3 and type(data[1]) is tuple and data[2] is None:
            name, args, kwargs = data[0], data[1], _NO_KEYWORDS  # a call without keywords
        else:
            name, args, kwargs = _unpack(data)
        for a in args:
            if type(a) is _Reference:
                args = tuple([_incoming(a, warn_after) for a in args])
                break
        if kwargs:
            kwargs = {k: _incoming(v, warn_after) for k, v in kwargs.items()}
        method = _target(obj, name)
    except Exception as exc:
        _answer_error(event, exc)
        return None
    if lock is not None:
        try:
            lock.acquire_nowait()  # no checkpoint when nobody else holds it
        except trio.WouldBlock:
            return _finish_call(event, lock, method, args, kwargs, None, locked=False)
    try:
        result = method(*args, **kwargs)
    except Exception as exc:
        if lock is not None:
            lock.release()
        _answer_error(event, exc)
        return None
    if inspect.isawaitable(result):
        return _finish_call(event, lock, method, args, kwargs, result, locked=True)
    if lock is not None:
        lock.release()
    _answer(event, result)
    return None


async def _finish_call(
    event: Any,
    lock: trio.Lock | None,
    method: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    pending: Any,
    *,
    locked: bool,
) -> None:
    """The rest of a call that has to wait: for the lock, or for an async method."""
    reply = event.ports[-1]
    try:
        if lock is not None and not locked:
            await lock.acquire()
        try:
            if pending is None:
                pending = method(*args, **kwargs)
            result = (
                await _until_caller_leaves(pending, reply)
                if inspect.isawaitable(pending)
                else pending
            )
        finally:
            if lock is not None:
                lock.release()
    except Exception as exc:
        _answer_error(event, exc)
    else:
        if result is not _GONE:
            _answer(event, result)
    finally:
        reply.close()


_GONE = object()


async def _until_caller_leaves(pending: Any, reply: MessagePort) -> Any:
    """Await `pending`, cancelled if the caller closes the reply port (it gave up)."""
    with trio.CancelScope() as scope:
        reply.onclose = lambda _: scope.cancel()
        reply.start()  # the close event comes through the queue (nothing else ever does)
        result = await pending
    if scope.cancelled_caught:
        return _GONE
    reply.onclose = None
    return result


async def expose(obj: object, port: MessagePort, *, concurrent: bool = False) -> None:
    """Serve `obj`'s public methods to calls made through [`wrap`][actors.wrap] on `port`'s
    peer, until the peer closes it (Comlink's `expose`).

    Returns when the peer closes `port` (after the calls still running have ended); cancel it
    to stop serving. A method may be sync or async. Its exception is raised at the caller and
    the serving goes on. A call whose caller gave up is cancelled if it is still running.

    Args:
        obj: the object (or function) to serve: its public attributes (no leading `_`) that
            are callable can be called.
        port: the port calls arrive on (e.g. one yielded by `Incoming`).
        concurrent: `False` (the default) runs one call at a time, in order, as OTP's
            `gen_server` does; `True` runs each call in a task of its own as soon as it comes.

    Raises:
        TypeError: `port` is not a [`MessagePort`][actors.MessagePort].
        trio.ClosedResourceError: `port` was closed here (or transferred away).
    """
    if not isinstance(port, MessagePort):
        raise TypeError(f"expose() serves on a MessagePort, not {type(port).__name__}")
    await serve_calls(obj, port, serial=not concurrent, lock=None)


async def serve_calls(
    obj: object, port: MessagePort, *, serial: bool, lock: trio.Lock | None
) -> None:
    """`expose`: one call at a time if `serial` (in order), else each in a task of its own.
    `lock`, if given, is held around each call: `Incoming.expose` shares one among the ports
    of all its clients, so that calls are one at a time across them."""
    if serial:
        async for event in port:
            pending = _serve_call(obj, event, WARN_AFTER, lock)
            if pending is not None:
                await pending
        return
    async with trio.open_nursery() as nursery:
        async for event in port:
            pending = _serve_call(obj, event, WARN_AFTER, lock)
            if pending is not None:
                nursery.start_soon(_awaited, pending)


async def _awaited(pending: Awaitable[None]) -> None:
    await pending


def _serve_by_handler(obj: object, port: MessagePort) -> None:
    """Serve `obj` on `port` from a message handler: for values passed by reference."""
    port.onmessage = lambda event: _serve_call(obj, event, WARN_AFTER, None)
