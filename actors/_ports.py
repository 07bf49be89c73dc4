"""MessageChannel and MessagePort: entanglement, port message queues, transfer and close.

A ``_PortCore`` is one end of a channel: its message queue and its link to the other end.
A ``MessagePort`` is the object that stands for a core in one place. Transferring a port moves
its core, queue and all, to a new ``MessagePort`` and leaves the old object detached. The core
talks to its peer only through ``peer.deliver(item)`` and the ``peer`` link, so a peer can
later live behind a relay (another thread, process or host) without the port changing.
"""

from __future__ import annotations

import contextvars
import itertools
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final, NoReturn, final

import attrs
import outcome
import trio

from ._clone import ATOMIC, clone, commit, serialize, transfer_list
from ._events import Event, EventTarget, Listener, MessageEvent, message_event
from ._exceptions import DataCloneError
from ._log import logger
from ._transfer import Transferable

__all__ = ["MessageChannel", "MessagePort", "MessagePortStatistics"]

FAIRNESS_BUDGET: Final = 64
"""How many events a port's dispatcher delivers before it lets other tasks run."""

_ids = itertools.count(1)


@final
class _Close:
    """Queue item: the peer disentangled. Always the last item a queue ever gets."""

    def __repr__(self) -> str:
        return "<close>"


_CLOSE: Final = _Close()


@final
class _MessageError:
    """Queue item: a message arrived that could not be deserialized (relays only)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


Item = tuple[object, tuple["MessagePort", ...]] | _Close | _MessageError


@final
class _PortCore:
    """One end of a channel, shared by every MessagePort object that has stood for it."""

    __slots__ = (
        "dispatcher",
        "enabled",
        "id",
        "parked",
        "peer",
        "pending",
        "queue",
        "receivers",
        "token",
    )

    def __init__(self, token: trio.lowlevel.TrioToken | None) -> None:
        self.id = f"p{next(_ids)}"
        self.queue: deque[Item] = deque()
        self.enabled = False
        self.peer: _PortCore | None = None
        # Tasks blocked in receive(). Only non-empty while the queue is empty and enabled.
        self.receivers: dict[trio.lowlevel.Task, None] = {}
        self.dispatcher: trio.lowlevel.Task | None = None
        self.parked: trio.lowlevel.Task | None = None  # the dispatcher, while it waits
        # A port that wants a dispatcher but could not start one (outside trio.run, or its
        # run ended): the next delivery from inside a run starts it.
        self.pending: weakref.ref[MessagePort] | None = None
        self.token = token

    def deliver(self, item: Item) -> None:
        """Add ``item`` to this end's queue (called by the peer, or by a relay)."""
        receivers = self.receivers
        if receivers:
            if item is _CLOSE:
                self.queue.append(item)
                self.wake_receivers(lambda: outcome.Value(item))
            else:
                task = next(iter(receivers))
                del receivers[task]
                trio.lowlevel.reschedule(task, outcome.Value(item))
                return
        else:
            self.queue.append(item)
        parked = self.parked
        if parked is not None:
            self.parked = None
            trio.lowlevel.reschedule(parked)
        elif self.pending is not None:
            handle = self.pending()
            if handle is None or handle._core is not self:
                self.pending = None
            else:
                handle._ensure_dispatcher(self)

    def wake_receivers(self, result: Callable[[], outcome.Outcome[Any]]) -> None:
        """Wake every blocked receive() with its own ``result()`` (an outcome unwraps once)."""
        receivers, self.receivers = self.receivers, {}
        for task in receivers:
            trio.lowlevel.reschedule(task, result())

    def wake_dispatcher(self) -> None:
        parked = self.parked
        if parked is not None:
            self.parked = None
            trio.lowlevel.reschedule(parked)

    def disentangle(self) -> None:
        """Cut the link to the peer; the peer's queue gets the close marker."""
        peer = self.peer
        if peer is None:
            return
        self.peer = peer.peer = None
        peer.deliver(_CLOSE)

    def abandon(self) -> None:
        """This end is gone for good: drop its queue (closing ports in it), disentangle."""
        self.enabled = False
        dropped = [item for item in self.queue if type(item) is tuple]
        self.queue.clear()
        self.wake_dispatcher()
        self.disentangle()
        for _, ports in dropped:
            for port in ports:
                port.close()
        if dropped:
            logger(port=self.id).debug("messages_dropped", count=len(dropped))


def _current_token() -> trio.lowlevel.TrioToken | None:
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


class _NoPublicConstructor(type):
    """Metaclass for classes only the library makes (as trio's ``NoPublicConstructor``)."""

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor; "
            "ports come from MessageChannel() and from transfer"
        )

    def _create(cls, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*args, **kwargs)


@final
@attrs.frozen
class MessagePortStatistics:
    """A snapshot of a port's state, from ``MessagePort.statistics()``."""

    queued: int
    """Messages waiting in the port message queue."""
    started: bool
    """Whether the queue is enabled (``start()``, ``onmessage`` or ``receive()``)."""
    entangled: bool
    """Whether the port still has a peer to post to."""
    closed: bool
    """Whether ``close()`` was called on this object."""
    transferred: bool
    """Whether this object was transferred away (it is then detached, like a closed one)."""
    tasks_waiting_receive: int
    """Tasks blocked in ``receive()`` or ``async for`` on this port."""
    message_handlers: int
    """``onmessage`` plus the ``message`` listeners: while above 0, handlers get the messages."""


@final
class MessagePort(EventTarget, Transferable, metaclass=_NoPublicConstructor):
    """One end of a channel: post to its peer, receive what the peer posts.

    Made only by ``MessageChannel()`` and by transfer. The web's API (``post_message``,
    ``start``, ``close``, ``onmessage``, ``onmessageerror``, ``onclose``, event listeners)
    behaves exactly as the HTML standard says, with the decisions D1-D10 of the spec file;
    trio's channel face (``receive``, ``async for``, ``send``, ``aclose``) sits beside it.

    Each message is delivered once: to the ``message`` handlers if the port has any when the
    message is dispatched, otherwise to ``receive()``.
    """

    __slots__ = ("__weakref__", "_core", "_state")

    def __init__(self, core: _PortCore | None) -> None:
        super().__init__()
        self._core = core
        self._state = "open"

    def __repr__(self) -> str:
        core = self._core
        if core is None:
            return f"<MessagePort {self._state}>"
        flags = [core.id, "started" if core.enabled else "not started"]
        flags.append("entangled" if core.peer is not None else "disentangled")
        return f"<MessagePort {' '.join(flags)} queued={len(core.queue)}>"

    # -- the web's API --------------------------------------------------------------------

    def post_message(self, message: object, transfer: Iterable[object] | None = None) -> None:
        """Send a structured clone of ``message`` to the peer, moving what ``transfer`` lists.

        Synchronous and never blocks; delivery is asynchronous (no handler runs inside this
        call). ``transfer`` is any iterable of ``MessagePort`` and ``ArrayBuffer`` objects, or
        ``None``: each is detached here and its new copy arrives with the message (ports in
        ``event.ports``, in transfer-list order).

        Raises:
            DataCloneError: ``message`` holds something that cannot be cloned, or ``transfer``
                lists something not transferable, detached, duplicated, or this port itself.
                Nothing was sent and nothing detached.
            TypeError: ``transfer`` is not iterable.

        Posting on a port that is closed, transferred, or whose peer is gone does nothing
        (the standard's rule): the message is still cloned and the transfer list still moved,
        so a call that returns has always detached what it listed.
        """
        core = self._core
        if transfer is None:
            data = message if type(message) in ATOMIC else clone(message)
            if core is not None and (peer := core.peer) is not None:
                peer.deliver((data, ()))
            return
        data, moves = serialize(message, transfer_list(transfer, source=self))
        target = None if core is None else core.peer
        doomed = target is not None and any(
            type(item) is MessagePort and item._core is target for item, _ in moves
        )
        commit(moves)
        ports = tuple(shell for _, shell in moves if type(shell) is MessagePort)
        if target is None or doomed:
            if doomed:
                logger(port=None if core is None else core.id).warning(
                    "message_doomed",
                    reason="the target port was posted to itself; the channel is lost",
                )
            for port in ports:
                port.close()
            return
        target.deliver((data, ports))

    def start(self) -> None:
        """Enable the port message queue: queued and later messages are dispatched in order.

        Idempotent. ``onmessage``, ``receive()`` and ``async for`` start the queue too; adding
        listeners does not.
        """
        core = self._core
        if core is None or core.enabled:
            return
        core.enabled = True
        if core.token is None:
            core.token = _current_token()
        self._ensure_dispatcher(core)

    def close(self) -> None:
        """Disentangle this port and detach it. Idempotent; never raises.

        Messages still queued here are dropped (D2), and ports inside them are closed. The
        peer gets a ``close`` event after every message it already had, and its ``receive()``
        then raises ``trio.EndOfChannel``. Tasks blocked in this port's ``receive()`` get
        ``trio.ClosedResourceError``.
        """
        core = self._core
        if core is None:
            return
        self._detach("closed", core)
        core.abandon()
        logger(port=core.id).debug("port_closed")

    @property
    def onmessage(self) -> Listener | None:
        """Handler for ``message`` events. Setting it to a handler starts the queue."""
        return self._get_handler("message")

    @onmessage.setter
    def onmessage(self, handler: Listener | None) -> None:
        self._set_handler("message", handler)
        if handler is not None:
            self.start()

    @property
    def onmessageerror(self) -> Listener | None:
        """Handler for ``messageerror`` events: a message that could not be deserialized."""
        return self._get_handler("messageerror")

    @onmessageerror.setter
    def onmessageerror(self, handler: Listener | None) -> None:
        self._set_handler("messageerror", handler)

    @property
    def onclose(self) -> Listener | None:
        """Handler for the ``close`` event: the peer was closed, collected, or lost (D5)."""
        return self._get_handler("close")

    @onclose.setter
    def onclose(self, handler: Listener | None) -> None:
        self._set_handler("close", handler)

    # -- trio's channel face --------------------------------------------------------------

    async def receive(self) -> MessageEvent:
        """Wait for the next message and return its ``MessageEvent``. Starts the queue (D1).

        A cancelled ``receive()`` loses no message.

        Raises:
            trio.EndOfChannel: the peer is gone and every message it sent was received.
            trio.ClosedResourceError: this port was closed or transferred away (also raised
                in tasks blocked here when that happens).
            trio.BusyResourceError: the port has ``message`` handlers, which get its messages.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        core = self._core
        if core is None:
            raise trio.ClosedResourceError(f"this MessagePort was {self._state}")
        if "message" in self._listeners:
            raise trio.BusyResourceError("this port's messages go to its message handlers")
        if not core.enabled:
            self.start()
        queue = core.queue
        if queue:
            item = queue[0]
            if item is _CLOSE:
                self._close_reached(core)
                raise trio.EndOfChannel
            queue.popleft()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return self._event(item)
        if core.peer is None:
            raise trio.EndOfChannel
        task = trio.lowlevel.current_task()
        core.receivers[task] = None

        def abort(_: Any) -> trio.lowlevel.Abort:
            core.receivers.pop(task, None)
            return trio.lowlevel.Abort.SUCCEEDED

        item = await trio.lowlevel.wait_task_rescheduled(abort)
        if item is _CLOSE:
            self._close_reached(core)
            raise trio.EndOfChannel
        return self._event(item)

    def __aiter__(self) -> MessagePort:
        return self

    async def __anext__(self) -> MessageEvent:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def send(self, message: object, transfer: Iterable[object] | None = None) -> None:
        """``post_message`` for trio code: the same, but it checkpoints and it tells you.

        Raises:
            trio.ClosedResourceError: this port was closed or transferred away.
            trio.BrokenResourceError: the peer is gone; nothing was sent or detached.
            DataCloneError, TypeError: as ``post_message``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        core = self._core
        if core is None:
            raise trio.ClosedResourceError(f"this MessagePort was {self._state}")
        if core.peer is None:
            raise trio.BrokenResourceError("the peer port is closed")
        self.post_message(message, transfer)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def aclose(self) -> None:
        """``close()``, then a checkpoint, as trio's ``AsyncResource``."""
        self.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> MessagePort:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def statistics(self) -> MessagePortStatistics:
        """A frozen snapshot of the port's queue, state and waiting tasks."""
        core = self._core
        handlers = len(self._listeners.get("message", ()))
        if core is None:
            return MessagePortStatistics(
                queued=0,
                started=False,
                entangled=False,
                closed=self._state == "closed",
                transferred=self._state == "transferred",
                tasks_waiting_receive=0,
                message_handlers=handlers,
            )
        return MessagePortStatistics(
            queued=sum(1 for item in core.queue if item is not _CLOSE),
            started=core.enabled,
            entangled=core.peer is not None,
            closed=False,
            transferred=False,
            tasks_waiting_receive=len(core.receivers),
            message_handlers=handlers,
        )

    # -- dispatch -------------------------------------------------------------------------

    def _event(self, item: Item) -> MessageEvent:
        if type(item) is tuple:
            return message_event("message", item[0], item[1], self)
        return message_event("messageerror", None, (), self)

    def _log_context(self) -> dict[str, object]:
        core = self._core
        return {"port": None if core is None else core.id}

    def _close_reached(self, core: _PortCore) -> None:
        """receive() reached the close marker: a close listener may now hear of it."""
        if "close" in self._listeners:
            core.wake_dispatcher()
            self._ensure_dispatcher(core)

    def _listeners_changed(self, type: str) -> None:
        core = self._core
        if core is None:
            return
        if type == "message" and "message" in self._listeners and core.receivers:
            busy = "a message handler was added to this port"
            core.wake_receivers(lambda: outcome.Error(trio.BusyResourceError(busy)))
        core.wake_dispatcher()  # to take up new work, or to exit when no listener is left
        self._ensure_dispatcher(core)

    def _ensure_dispatcher(self, core: _PortCore) -> None:
        if core.dispatcher is not None or not core.enabled or not self._listeners:
            return
        if _current_token() is None:
            core.pending = weakref.ref(self)
            return
        core.pending = None
        core.dispatcher = trio.lowlevel.spawn_system_task(
            self._dispatch_loop,
            core,
            name=f"actors.MessagePort dispatcher {core.id}",
            context=contextvars.copy_context(),  # handlers see the starter's contextvars
        )

    async def _dispatch_loop(self, core: _PortCore) -> None:
        """Deliver events to this port's listeners, in queue order, while any can come.

        Handlers run here, in a trio system task per dispatching port. Ready events are
        drained in a loop; every FAIRNESS_BUDGET events the task yields to the others. The
        task ends when the port is closed or transferred, loses its last listener, or has
        nothing to dispatch and no peer to get more from; ``start()``, a new listener, or a
        ``receive()`` that reaches the close marker starts a new one when there is work.
        """
        task = trio.lowlevel.current_task()
        listeners = self._listeners
        queue = core.queue
        budget = FAIRNESS_BUDGET

        def abort(_: Any) -> trio.lowlevel.Abort:
            if core.parked is task:
                core.parked = None
            return trio.lowlevel.Abort.SUCCEEDED

        try:
            while self._core is core and listeners:
                if queue and core.enabled:
                    item = queue[0]
                    if item is _CLOSE:
                        if "close" in listeners:
                            queue.popleft()
                            if (pending := self._fire(Event("close", self))) is not None:
                                await pending
                            return
                    elif "message" in listeners:
                        queue.popleft()
                        if (pending := self._fire(self._event(item))) is not None:
                            await pending
                        budget -= 1
                        if not budget:
                            budget = FAIRNESS_BUDGET
                            await trio.lowlevel.checkpoint()
                        continue
                if core.peer is None:
                    return  # nothing more can arrive: do not hold this port alive
                core.parked = task
                await trio.lowlevel.wait_task_rescheduled(abort)
                budget = FAIRNESS_BUDGET
        except trio.Cancelled:
            if self._core is core and listeners:  # its trio run is ending
                core.pending = weakref.ref(self)
            raise
        finally:
            if core.dispatcher is task:
                core.dispatcher = None
            if core.parked is task:
                core.parked = None

    def _detach(self, state: str, core: _PortCore) -> None:
        """This object stops standing for ``core``: wake whoever waits on it here."""
        self._core = None
        self._state = state
        core.wake_receivers(
            lambda: outcome.Error(trio.ClosedResourceError(f"the port was {state}"))
        )
        core.wake_dispatcher()
        core.dispatcher = None  # that task ends (it no longer owns the core); a new object
        # that takes the core over must be able to start its own

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is None:
            return
        # A port collected while entangled disentangles, so its peer gets `close` (D5). This
        # may run anywhere (inside our own code, another thread): defer to the trio run.
        try:
            token = core.token or _current_token()
            if token is not None:
                try:
                    token.run_sync_soon(_collected, core)
                    return
                except trio.RunFinishedError:
                    pass
            _collected(core)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # -- Transferable ---------------------------------------------------------------------

    def _transfer_shell(self) -> MessagePort:
        shell: MessagePort = MessagePort._create(None)
        shell._state = "in flight"
        return shell

    def _transfer_refusal(self) -> str | None:
        if self._core is None:
            return f"MessagePort is already detached (it was {self._state})"
        return None

    def _transfer_commit(self, shell: Transferable) -> None:
        assert isinstance(shell, MessagePort)
        core = self._core
        assert core is not None
        self._detach("transferred", core)
        core.enabled = False  # a received port starts with its queue disabled
        core.pending = None
        shell._core = core
        shell._state = "open"
        logger(port=core.id).debug("port_transferred", queued=len(core.queue))

    def _clone_untransferred(self) -> NoReturn:
        raise DataCloneError(
            "a MessagePort in a message must also be listed in transfer", value=self
        )


def _collected(core: _PortCore) -> None:
    if core.peer is not None or any(item is not _CLOSE for item in core.queue):
        logger(port=core.id).debug("port_collected")
    core.abandon()


@final
class MessageChannel:
    """A new channel: two entangled ports, ``port1`` and ``port2``.

    What is posted on one port arrives at the other. Hand one port to another task (or
    transfer it in a message) and keep the other.
    """

    __slots__ = ("_port1", "_port2")

    def __init__(self) -> None:
        token = _current_token()
        core1, core2 = _PortCore(token), _PortCore(token)
        core1.peer, core2.peer = core2, core1
        self._port1: MessagePort = MessagePort._create(core1)
        self._port2: MessagePort = MessagePort._create(core2)

    @property
    def port1(self) -> MessagePort:
        """The first port (the same object on every access)."""
        return self._port1

    @property
    def port2(self) -> MessagePort:
        """The second port (the same object on every access)."""
        return self._port2

    def __repr__(self) -> str:
        return f"<MessageChannel {self._port1!r} {self._port2!r}>"
