"""BroadcastChannel: the web's named broadcast, within one trio run.

Every `BroadcastChannel` of a name joins that name's `_Bus` of the running trio run. A
post goes to every other open channel of the name, oldest first, each getting its own clone.
The bus is the one place that knows who listens to a name: a later relay for threads,
processes or hosts joins the bus as one more member and forwards what it publishes.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Final, final

import trio

from ._clone import ATOMIC, clone
from ._exceptions import InvalidStateError
from ._inbox import call_soon
from ._owner import CURRENT
from ._queue import PortCore
from ._receiver import Receiver, current_token
from ._threads import get_ident

__all__ = ["BroadcastChannel"]

_serials = itertools.count()


@final
class _Bus:
    """The channels of each name in one trio run, in creation order."""

    __slots__ = ("kept", "names")

    _current: Final = trio.lowlevel.RunVar["_Bus"]("actors_broadcast_bus")

    def __init__(self) -> None:
        self.names: dict[str, dict[int, weakref.ref[BroadcastChannel]]] = {}
        self.kept: set[BroadcastChannel] = set()  # open with message listeners: kept alive

    @classmethod
    def current(cls) -> _Bus:
        try:
            return cls._current.get()
        except LookupError:
            bus = cls()
            cls._current.set(bus)
            return bus
        except RuntimeError:
            raise RuntimeError("make a BroadcastChannel inside a trio run") from None

    def join(self, channel: BroadcastChannel, serial: int) -> None:
        members = self.names.setdefault(channel._name, {})
        name = channel._name

        def gone(_: object) -> None:  # collected without close()
            members.pop(serial, None)
            if not members and self.names.get(name) is members:
                del self.names[name]

        members[serial] = weakref.ref(channel, gone)

    def leave(self, channel: BroadcastChannel) -> None:
        self.kept.discard(channel)
        members = self.names.get(channel._name)
        if members is not None:
            members.pop(channel._serial, None)
            if not members:
                del self.names[channel._name]

    def publish(self, sender: BroadcastChannel, data: object) -> None:
        """Deliver `data` (already a validated clone) to every other channel of the name."""
        members = self.names.get(sender._name)
        if not members:
            return
        shared = type(data) in ATOMIC
        first = True
        for ref in list(members.values()):
            channel = ref()
            if channel is None or channel is sender or channel._core is None:
                continue
            channel._core.deliver(data if first or shared else clone(data), ())
            first = False


@final
class BroadcastChannel(Receiver):
    """A named channel: what one posts, every other open channel of the same name receives.

    As the web's `BroadcastChannel(name)`, within one trio run: `post_message` sends to
    every *other* open channel of the name (no echo; a channel made after the post gets
    nothing), oldest channel first, each its own structured clone. There is no `start()`:
    `onmessage`, `add_event_listener` and `receive()` get messages at once. `close()` is
    idempotent and drops the messages still pending here. While open with `message`
    listeners, the channel is kept alive. Made inside an actor, it belongs to that
    incarnation, like the ports it makes: it is closed when the incarnation ends.

    Also trio's face, as a `trio.abc.ReceiveChannel[MessageEvent]`: `receive()`,
    `receive_nowait()`, `async for` and `async with` (which closes it). With no peer to
    lose, an `async for` loop never ends by itself: closing the channel from elsewhere makes
    it raise `trio.ClosedResourceError`.

    Args:
        name: the channel's name, converted with `str`.

    Raises:
        RuntimeError: made outside a trio run.
    """

    __slots__ = ("__weakref__", "_bus", "_name", "_serial")
    _noun = "BroadcastChannel"
    _var = "channel"

    def __init__(self, name: object) -> None:
        bus = _Bus.current()
        core = PortCore(current_token())
        core.peer = core  # never ends while open: only close() detaches it
        core.enabled = True
        super().__init__(core)
        self._name = str(name)
        self._serial = next(_serials)
        self._bus = bus
        bus.join(self, self._serial)
        owner = CURRENT.get()
        if owner is not None:  # made inside an actor: closed when its incarnation ends
            owner.adopt(self)

    def __repr__(self) -> str:
        return f"<BroadcastChannel {self._name!r} {'closed' if self._core is None else 'open'}>"

    @property
    def name(self) -> str:
        """The channel's name (what `str(name)` gave)."""
        return self._name

    def post_message(self, message: object) -> None:
        """Send a structured clone of `message` to every other open channel of this name.

        Synchronous; delivery is asynchronous. There is no transfer list. Any thread may
        post: from a thread outside the channel's trio run, the message is cloned there, then
        published in the run, in the order that thread posted (dropped once the run has
        finished).

        Args:
            message: any value [`structured_clone`][actors.structured_clone] accepts.

        Raises:
            InvalidStateError: this channel is closed (checked before `message` is cloned).
            DataCloneError: `message` cannot be cloned; nobody gets anything.
        """
        core = self._core
        if core is None:
            raise InvalidStateError("this BroadcastChannel is closed")
        data = message if type(message) in ATOMIC else clone(message)
        if core.thread != get_ident():
            assert core.token is not None  # a BroadcastChannel is made inside a run
            call_soon(core.token, self._bus.publish, self, data)
            return
        self._bus.publish(self, data)

    def close(self) -> None:
        """Leave the name for good: nothing more arrives, and what is pending is dropped.

        Idempotent; in its trio run it never raises. Tasks blocked in `receive()` get
        `trio.ClosedResourceError`.

        Raises:
            RuntimeError: called from a thread outside the trio run the channel was made in
                (call it through `trio.from_thread.run_sync(channel.close)`); nothing changed.
        """
        self._check_thread("close()", "call it through trio.from_thread.run_sync(channel.close)")
        core = self._core
        if core is None:
            return
        self._bus.leave(self)
        self._detach("closed", core)
        core.peer = None
        core.enabled = False
        core.handle = None
        core.queue.clear()

    def _listeners_changed(self, type: str) -> None:
        super()._listeners_changed(type)
        if self._core is None:
            return
        if "message" in self._listeners:
            self._bus.kept.add(self)
        else:
            self._bus.kept.discard(self)
