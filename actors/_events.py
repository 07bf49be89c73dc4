"""Events and the small EventTarget that ports dispatch them through."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeAlias, final

import trio

from ._log import describe, logger
from ._owner import CURRENT
from ._threads import outside_run, wrong_thread

if TYPE_CHECKING:
    from ._ports import MessagePort
    from ._receiver import Receiver

__all__ = ["Event", "EventTarget", "Listener", "MessageEvent"]

Listener: TypeAlias = Callable[[Any], "Awaitable[object] | object"]
"""A plain function or an async function that takes the event."""


@final
class Event:
    """A plain event, such as `close`: it has a `type` and a `target`, nothing else.

    A port gives its `close` handlers one of these. Made by the library; you would make one
    only to call a handler yourself, in a test.

    Args:
        type: the event's type, e.g. `"close"`.
        target: the port (or [`BroadcastChannel`][actors.BroadcastChannel]) it is
            dispatched on.
    """

    __slots__ = ("_target", "_type")
    bubbles: Final = False
    """Always `False`: ports are not in a tree, so an event never bubbles."""
    cancelable: Final = False
    """Always `False`: nothing here has a default action to cancel."""

    def __init__(self, type: str, target: Receiver | None = None) -> None:
        self._type = type
        self._target = target

    @property
    def type(self) -> str:
        """The event's type, e.g. `"close"`."""
        return self._type

    @property
    def target(self) -> Receiver | None:
        """The port (or [`BroadcastChannel`][actors.BroadcastChannel]) it was dispatched on."""
        return self._target

    def __repr__(self) -> str:
        return f"<Event {self._type!r} target={self._target!r}>"


@final
class MessageEvent:
    """A message that arrived at a port: what `receive()` returns and handlers are given.

    Attributes are read-only. `origin` and `last_event_id` are `""` and `source` is `None`,
    as the post message steps of the HTML standard leave them.

    Made by the library; you would make one only to call a handler yourself, in a test.

    Args:
        type: `"message"`, `"messageerror"`, or `"lagged"` (what a port's `lagged`
            listeners get under [`DROP_OLDEST`][actors.SlowMemberPolicy.DROP_OLDEST], with
            `data` the number of messages dropped).
        data: the message.
        ports: the ports transferred with it.
        target: the port (or [`BroadcastChannel`][actors.BroadcastChannel]) that received it.
    """

    __slots__ = ("_data", "_ports", "_target", "_type")
    bubbles: Final = False
    """Always `False`, as for every event here."""
    cancelable: Final = False
    """Always `False`, as for every event here."""
    origin: Final = ""
    """Always `""`: a port has no origin to report (the standard leaves it empty)."""
    last_event_id: Final = ""
    """Always `""` (the standard leaves it empty for port messages)."""
    source: Final = None
    """Always `None` (the standard leaves it empty for port messages)."""

    def __init__(
        self,
        type: str = "message",
        *,
        data: object = None,
        ports: tuple[MessagePort, ...] = (),
        target: Receiver | None = None,
    ) -> None:
        self._type = type
        self._data = data
        self._ports = ports
        self._target = target

    @property
    def type(self) -> str:
        """`"message"`, or `"messageerror"` when the message could not be deserialized.

        A port's `lagged` listeners get events of type `"lagged"` (see
        [`Lagged`][actors.Lagged]).
        """
        return self._type

    @property
    def data(self) -> Any:
        """The structured clone of the posted message (`None` for `messageerror`).

        For a `lagged` event, how many messages were dropped.
        """
        return self._data

    @property
    def ports(self) -> tuple[MessagePort, ...]:
        """Every port transferred with the message, in transfer-list order (a tuple: frozen)."""
        return self._ports

    @property
    def target(self) -> Receiver | None:
        """The port (or [`BroadcastChannel`][actors.BroadcastChannel]) that received the
        message (never the sender)."""
        return self._target

    def reply(self, value: object, *, transfer: Iterable[object] | None = None) -> bool:
        """Answer the [`ask()`][actors.ask] that sent this message: post `value` on its reply port.

        The reply port is the last of `ports` (`ask` puts it there); it is closed after the
        reply, so each message is answered once.

        Args:
            value: the answer; `ask()` returns its structured clone.
            transfer: ports and buffers in `value` to move, as for
                [`MessagePort.post_message`][actors.MessagePort.post_message].

        Returns:
            `True` if the asker was still waiting, `False` if it had given up (cancelled), in
                which case the reply went nowhere.

        Raises:
            RuntimeError: the message carries no ports, so it has no reply port; or this was
                called from a thread outside the trio run that owns the reply port (call it
                through `trio.from_thread.run_sync(event.reply, value)`): nothing was sent.
            trio.ClosedResourceError: the reply port was already used (replied to, closed,
                or transferred away).
            DataCloneError: `value` cannot be cloned, or `transfer` lists something it
                cannot move; nothing was sent, and the reply port stays open for another try.
            TypeError: `transfer` is not iterable; as for `DataCloneError`, nothing was sent.
        """
        if not self._ports:
            raise RuntimeError("this message carries no ports, so no reply port: use ask()")
        port = self._ports[-1]
        core = port._core
        if core is None:
            raise trio.ClosedResourceError(f"the reply port was already {port._state}")
        if outside_run(core.thread):
            raise wrong_thread(
                "MessageEvent.reply()",
                "reply port",
                "call it through trio.from_thread.run_sync(event.reply, value)",
            )
        waiting = core.peer is not None
        port.post_message(value, transfer)
        port.close()
        return waiting

    def __repr__(self) -> str:
        return (
            f"<MessageEvent {self._type!r} data={self._data!r} "
            f"ports={len(self._ports)} target={self._target!r}>"
        )


@final
class _Entry:
    """One registered listener. `removed` lets a dispatch in progress skip it (DOM rule)."""

    __slots__ = ("callback", "once", "removed")

    def __init__(self, callback: Listener, once: bool) -> None:
        self.callback = callback
        self.once = once
        self.removed = False


class EventTarget:
    """Listeners and `on*` handler attributes, dispatched in registration order.

    As in the DOM: adding the same listener twice for one type does nothing; an `on*`
    handler takes its place among the listeners when first set, and setting it to `None`
    removes it. A listener may be a plain function or an async function; an async one is
    awaited before the next listener runs. A listener that raises is reported (logged at
    error level as `event_listener_failed`, with the traceback) and dispatch goes on; if an
    actor set the listener up, the actor crashes with that exception instead.
    """

    __slots__ = ("_handlers", "_listeners")

    def __init__(self) -> None:
        # Copy-on-write tuples, so dispatch can iterate without copying.
        self._listeners: dict[str, tuple[_Entry, ...]] = {}
        self._handlers: dict[str, _Entry] = {}

    def add_event_listener(self, type: str, listener: Listener, *, once: bool = False) -> None:
        """Call `listener(event)` for every event of `type` dispatched on this target.

        Adding a listener that is already registered for `type` does nothing. Listeners run
        in the order they were added; an async one is awaited before the next one runs. A
        listener that raises is logged (`event_listener_failed`) and the others still run;
        if an actor set it up, that actor crashes with the exception instead.

        Adding a `message` listener does not start a port's queue (`start()` or `onmessage`
        does); once there is one, `receive()` raises `trio.BusyResourceError`.

        Args:
            type: `"message"`, `"messageerror"`, `"close"` (ports only), or `"lagged"`
                (ports only: a [`MessageEvent`][actors.MessageEvent] whose `data` is how many
                messages a [`PortCollection`][actors.PortCollection] dropped).
            listener: a plain function or an async function that takes the event.
            once: remove the listener just before its first call.

        Raises:
            TypeError: `listener` is not callable.
            RuntimeError: called from a thread outside the trio run that owns the port (call
                it through `trio.from_thread.run_sync`); nothing changed.
        """
        self._check_thread(
            "add_event_listener()",
            "call it through trio.from_thread.run_sync({var}.add_event_listener, type, listener)",
        )
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {listener.__class__.__name__}")
        current = self._listeners.get(type, ())
        handler = self._handlers.get(type)
        if any(e.callback == listener and e is not handler for e in current):
            return
        self._listeners[type] = (*current, _Entry(listener, once))
        self._listeners_changed(type)

    def remove_event_listener(self, type: str, listener: Listener) -> None:
        """Stop calling `listener` for `type`. Removing one that is not there does nothing.

        It does not remove the `on*` handler, even when that is the same function: set the
        handler to `None` for that.

        Args:
            type: the event type it was added for.
            listener: the function given to `add_event_listener`.

        Raises:
            RuntimeError: called from a thread outside the trio run that owns the port (call
                it through `trio.from_thread.run_sync`); nothing changed.
        """
        self._check_thread(
            "remove_event_listener()",
            "call it through trio.from_thread.run_sync({var}.remove_event_listener, type, "
            "listener)",
        )
        current = self._listeners.get(type, ())
        handler = self._handlers.get(type)
        for entry in current:
            if entry.callback == listener and entry is not handler:
                self._remove_entry(type, entry)
                return

    def _remove_entry(self, type: str, entry: _Entry) -> None:
        entry.removed = True
        remaining = tuple(e for e in self._listeners.get(type, ()) if e is not entry)
        if remaining:
            self._listeners[type] = remaining
        else:
            self._listeners.pop(type, None)
        self._listeners_changed(type)

    def _get_handler(self, type: str) -> Listener | None:
        entry = self._handlers.get(type)
        return None if entry is None else entry.callback

    def _set_handler(self, type: str, handler: Listener | None) -> None:
        self._check_thread(
            f"on{type}",
            f"set it through trio.from_thread.run_sync(setattr, {{var}}, 'on{type}', handler)",
            done="was set",
        )
        old = self._handlers.get(type)
        if handler is None:
            if old is not None:
                del self._handlers[type]
                self._remove_entry(type, old)
            return
        if not callable(handler):
            raise TypeError(f"on{type} must be callable or None, not {handler.__class__.__name__}")
        if old is not None:
            old.callback = handler  # keeps its place, as the DOM does
            return
        entry = _Entry(handler, once=False)
        self._handlers[type] = entry
        self._listeners[type] = (*self._listeners.get(type, ()), entry)
        self._listeners_changed(type)

    def _listeners_changed(self, type: str) -> None:
        """Hook for subclasses: the listeners of `type` changed."""

    def _check_thread(self, member: str, fix: str, done: str = "was called") -> None:
        """Hook for subclasses: raise if the calling thread may not change this target.

        `member` names the call (`"close()"`), `fix` says what to do instead, with `{var}`
        standing for the object (`port`); `done` is `"was called"` or `"was set"`.
        """

    def _log_context(self) -> dict[str, object]:
        """Hook for subclasses: what to bind when reporting a listener's error."""
        return {}

    def _fire(self, event: Event | MessageEvent) -> Coroutine[Any, Any, None] | None:
        """Call the listeners of `event.type` in order, reporting and surviving their errors.

        Returns `None` when every listener was synchronous. When one returns an awaitable,
        returns a coroutine that awaits it and then calls the rest: the caller awaits it. So
        the common case (plain functions) costs no coroutine at all.
        """
        entries = self._listeners.get(event._type, ())
        if len(entries) == 1:  # the common case, in fewer steps
            entry = entries[0]
            if entry.removed:
                return None
            if entry.once:
                self._remove_entry(event._type, entry)
            try:
                result = entry.callback(event)
            except BaseException as exc:  # a handler runs in a system task: nothing may escape
                self._report(entry, event, exc)
                return None
            if result is not None and inspect.isawaitable(result):
                return self._fire_rest(result, entry, (), event)
            return None
        for i, entry in enumerate(entries):
            result = self._call(entry, event)
            if result is not None and inspect.isawaitable(result):
                return self._fire_rest(result, entry, entries[i + 1 :], event)
        return None

    async def _fire_rest(
        self,
        pending: Awaitable[object],
        entry: _Entry,
        rest: tuple[_Entry, ...],
        event: Event | MessageEvent,
    ) -> None:
        try:
            await pending
        except trio.Cancelled:
            raise
        except BaseException as exc:  # a handler runs in a system task: nothing may escape
            self._report(entry, event, exc)
        for entry in rest:
            result = self._call(entry, event)
            if result is not None and inspect.isawaitable(result):
                try:
                    await result
                except trio.Cancelled:
                    raise
                except BaseException as exc:
                    self._report(entry, event, exc)

    def _call(self, entry: _Entry, event: Event | MessageEvent) -> object:
        if entry.removed:
            return None
        if entry.once:
            self._remove_entry(event.type, entry)
        try:
            return entry.callback(event)
        except BaseException as exc:  # a handler runs in a system task: nothing may escape
            self._report(entry, event, exc)
            return None

    def _report(self, entry: _Entry, event: Event | MessageEvent, exc: BaseException) -> None:
        """A listener raised. An actor's crashes its actor (a `BaseException` such as
        `KeyboardInterrupt` is raised in the actor's task, so it goes up the tree as from a
        nursery); any other is logged, and dispatch goes on (a `BaseException` too: handlers
        run in a trio system task, which must never raise)."""
        owner = CURRENT.get()
        if owner is not None and owner.crash(exc):  # an actor's handler: let it crash
            return
        logger().error(
            "event_listener_failed",
            event_type=event.type,
            listener=describe(entry.callback),
            exc_info=exc,
            **self._log_context(),
        )


def message_event(
    type: str, data: object, ports: tuple[MessagePort, ...], target: Receiver
) -> MessageEvent:
    """The library's own fast path to a MessageEvent (no keyword-call overhead)."""
    event = _new_event(MessageEvent)
    event._type = type
    event._data = data
    event._ports = ports
    event._target = target
    return event


_new_event = object.__new__
