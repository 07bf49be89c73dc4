"""Receiver: the receiving half of a port, shared by MessagePort and BroadcastChannel.

One object stands for one `PortCore` (`_queue`) at a time and receives its queue's events
two ways: trio's face (`receive()`, `async for`) and the web's (`onmessage`, listeners,
dispatched by the run's dispatcher). Subclasses say how messages get in (`post_message`)
and how the object closes.
"""

from __future__ import annotations

import contextvars
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import outcome
import trio

from . import _queue
from ._events import EventTarget, Listener, MessageEvent, message_event
from ._exceptions import Lagged
from ._owner import CURRENT, Incarnation, adopt
from ._queue import AGAIN, CLOSE, LAGGED, MESSAGE_ERROR, Item, PortCore
from ._threads import get_ident, wrong_thread

__all__ = ["Receiver", "current_token"]


_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
_cancel_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint


def _unwaiting(core: PortCore, task: trio.lowlevel.Task) -> Callable[[Any], trio.lowlevel.Abort]:
    """The abort function of a `receive()` waiting at `core`: it stops waiting there."""

    def abort(_: Any) -> trio.lowlevel.Abort:
        core.receivers.pop(task, None)
        return trio.lowlevel.Abort.SUCCEEDED

    return abort


def current_token() -> trio.lowlevel.TrioToken | None:
    """The running trio run's token, or `None` outside `trio.run`."""
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


class Receiver(EventTarget, trio.abc.ReceiveChannel[MessageEvent]):
    """Receives the events of one port core, by `receive()` or by handlers."""

    __slots__ = ("_core", "_state")
    _noun: ClassVar[str] = "port"  # in error messages
    _var: ClassVar[str] = "port"  # what error messages call an object of this class in code

    @abstractmethod
    def close(self) -> None:
        """Stop receiving for good; idempotent."""

    def __init__(self, core: PortCore | None) -> None:
        super().__init__()
        self._core = core
        self._state = "open"

    def _start(self) -> None:
        core = self._core
        if core is None or core.enabled:
            return
        core.enabled = True
        if core.token is None:
            core.join(current_token())
        self._attach(core)

    @property
    def onmessage(self) -> Listener | None:
        """Handler for `message` events. Setting it to a handler starts a port's queue.

        A handler is a plain function or an async function that takes the
        [`MessageEvent`][actors.MessageEvent]; `None` means no handler. While there is one,
        messages go to it and not to `receive()`. It takes its place among the `message`
        listeners when first set; setting it again keeps that place, and setting it to `None`
        removes it.

        Raises:
            TypeError: it was set to something that is neither callable nor `None`.
            RuntimeError: it was set from a thread outside the trio run that owns the port
                (set it through `trio.from_thread.run_sync`); nothing changed.
        """
        return self._get_handler("message")

    @onmessage.setter
    def onmessage(self, handler: Listener | None) -> None:
        self._set_handler("message", handler)
        if handler is not None:
            self._start()

    @property
    def onmessageerror(self) -> Listener | None:
        """Handler for `messageerror` events: a message that could not be deserialized.

        Setting it does not start the queue. Every message posted within one trio run can be
        deserialized, so within a run it does not fire; a message from another process can
        fail to decode (a class this process lacks). Without handlers, `receive()` returns
        the `messageerror` event in its place (`data` is `None`, no ports).

        Raises:
            TypeError: it was set to something that is neither callable nor `None`.
            RuntimeError: it was set from a thread outside the trio run that owns the port
                (set it through `trio.from_thread.run_sync`); nothing changed.
        """
        return self._get_handler("messageerror")

    @onmessageerror.setter
    def onmessageerror(self, handler: Listener | None) -> None:
        self._set_handler("messageerror", handler)

    async def receive(self) -> MessageEvent:
        """Wait for the next message and return its event. Starts a port's queue (D1).

        Messages come in the order they were posted. A cancelled `receive()` loses no
        message. `async for event in port` calls it until `trio.EndOfChannel`.

        Returns:
            The message's event, as `message` handlers would get it (ports in it now belong
                to the receiving task's actor, if any); for a message from another process
                that could not be decoded here, a `messageerror` event (`type` is
                `"messageerror"`, `data` is `None`, no ports).

        Raises:
            trio.EndOfChannel: the peer is gone and every message it sent was received
                (never for a [`BroadcastChannel`][actors.BroadcastChannel]: it has no peer to
                lose). Raised again by every later call.
            trio.ClosedResourceError: this object was closed or transferred away (also
                raised in tasks blocked here when that happens).
            trio.BusyResourceError: it has `message` handlers, which get its messages (also
                raised in tasks blocked here when a `message` handler is added).
            Lagged: a [`PortCollection`][actors.PortCollection] with the `DROP_OLDEST` policy
                dropped messages this port had not received yet; `missed` says how many.
                Receive again for the next one (it is a `trio.TooSlowError`).
            RuntimeError: called from a thread outside the trio run that owns the port
                (call it through `trio.from_thread.run(port.receive)`).
        """
        core = self._core
        if core is not None and core.thread != get_ident() and core.thread is not None:
            self._check_thread("receive()", "call it through trio.from_thread.run({var}.receive)")
        await _checkpoint_if_cancelled()  # raises, or returns without a switch
        if core is None or "message" in self._listeners:
            core = self._checked_core()  # raises
        if not core.enabled:
            self._start()
        waited = False  # blocked once already: this call was a checkpoint
        while True:
            if core.busy:  # a message is in hand (a handler's, or another receive()'s)
                if core.idle is None:
                    core.idle = trio.Event()
                await core.idle.wait()
                core = self._checked_core()
                waited = True
                continue
            queue = core.queue
            if queue:
                item = queue[0]
                if item[0] is CLOSE:
                    self._close_reached(core)
                    raise trio.EndOfChannel
                queue.popleft()
                if core.drained is not None:  # a sender waits for room (PortCollection.send)
                    core.taken()
                if core.reads is not None and item[0] is not LAGGED:
                    core.reads.took()
                if not waited:
                    core.busy = True  # in hand until we return it: nothing overtakes it
                    try:
                        await _cancel_shielded_checkpoint()
                    finally:
                        core.release()
                elif core.receivers and queue:  # the next one waiting takes the next
                    core.release()
                data, ports, _ = item
                if ports or data is LAGGED or data is MESSAGE_ERROR:
                    if data is LAGGED:
                        raise Lagged(ports)
                    return self._event(item)
                return message_event("message", data, ports, self)
            if core.peer is None:
                raise trio.EndOfChannel
            read_for = _queue.READ_FOR
            if read_for is not None:
                reading = read_for(core)
                if reading is not None:  # wait at the link its messages come by, and read it
                    await reading(core)
                    core = self._checked_core()
                    waited = True
                    continue
            task = trio.lowlevel.current_task()
            core.receivers[task] = None
            item = await trio.lowlevel.wait_task_rescheduled(_unwaiting(core, task))
            if item is AGAIN:  # the port is free again: take the head ourselves
                core = self._checked_core()
                continue
            if item[0] is CLOSE:
                self._close_reached(core)
                raise trio.EndOfChannel
            core.release()  # handed to us directly, and in hand until now
            data, ports, _ = item
            if ports or data is MESSAGE_ERROR:
                return self._event(item)
            return message_event("message", data, ports, self)

    def receive_nowait(self) -> MessageEvent:
        """The next message's event if one is queued, without waiting and without a
        checkpoint (as trio's `MemoryReceiveChannel.receive_nowait`). Starts a port's queue
        (D1), as `receive()` does.

        It is for draining: after `await receive()` has returned, `receive_nowait()` takes
        what else has arrived, with no trip through trio's scheduler for each message (a
        checkpoint costs a few microseconds; a message taken here costs under one). The
        order, the read rules and the events are those of `receive()`.

        Returns:
            The message's event, as `receive()` would return it.

        Raises:
            trio.WouldBlock: no message is queued, or another `receive()` has the head in hand.
            trio.EndOfChannel: the peer is gone and every message it sent was received.
            trio.ClosedResourceError: this object was closed or transferred away.
            trio.BusyResourceError: it has `message` handlers, which get its messages.
            Lagged: as `receive()` (a `DROP_OLDEST` collection dropped messages).
            RuntimeError: called from a thread outside the trio run that owns the port
                (nothing is taken).
        """
        core = self._core
        if core is not None and core.thread != get_ident() and core.thread is not None:
            fix = "call it through trio.from_thread.run_sync({var}.receive_nowait)"
            self._check_thread("receive_nowait()", fix)
        if core is None or "message" in self._listeners:
            core = self._checked_core()  # raises
        if not core.enabled:
            self._start()
        queue = core.queue
        if core.busy:
            raise trio.WouldBlock
        if not queue:
            if core.peer is None:
                raise trio.EndOfChannel
            raise trio.WouldBlock
        item = queue[0]
        if item[0] is CLOSE:
            self._close_reached(core)
            raise trio.EndOfChannel
        queue.popleft()
        if core.drained is not None:
            core.taken()
        if core.reads is not None and item[0] is not LAGGED:
            core.reads.took()
        data, ports, _ = item
        if ports or data is LAGGED or data is MESSAGE_ERROR:
            if data is LAGGED:
                raise Lagged(ports)
            return self._event(item)
        return message_event("message", data, ports, self)

    def _checked_core(self) -> PortCore:
        """The core to receive from, or the error `receive()` raises instead."""
        core = self._core
        if core is None:
            raise trio.ClosedResourceError(f"this {self.__class__.__name__} was {self._state}")
        if "message" in self._listeners:
            raise trio.BusyResourceError(f"this {self._noun}'s messages go to its message handlers")
        return core

    async def aclose(self) -> None:
        """`close()`, then a checkpoint, as trio's `AsyncResource`: what `async with` calls.

        It closes even when cancelled.

        Raises:
            RuntimeError: called from a thread outside the trio run that owns the port (call
                it through `trio.from_thread.run(port.aclose)`); nothing changed.
        """
        self._check_thread("aclose()", "call it through trio.from_thread.run({var}.aclose)")
        self.close()
        await trio.lowlevel.checkpoint()

    def _event(self, item: Item) -> MessageEvent:
        data, ports, _ = item
        if data is MESSAGE_ERROR:
            return message_event("messageerror", None, (), self)
        if ports:
            adopt(ports, CURRENT.get())  # a port an actor receives is its own now
        return message_event("message", data, ports, self)

    def _check_thread(self, member: str, fix: str, done: str = "was called") -> None:
        core = self._core
        if core is not None and core.thread is not None and core.thread != get_ident():
            raise wrong_thread(
                f"{self.__class__.__name__}.{member}", self._var, fix.format(var=self._var), done
            )

    def _log_context(self) -> dict[str, object]:
        core = self._core
        return {"port": None if core is None else core.id}

    def _attach(self, core: PortCore) -> None:
        """Be the port `core` dispatches to while events can come; else let it go.

        Handlers run in a copy of the context of the task that attached the port (the one
        that started it or added a listener), so its contextvars reach them.
        """
        if core.enabled and self._listeners:
            if core.handle is not self:
                core.handle = self
                core.context = contextvars.copy_context()
                owner = core.owner = CURRENT.get()
                if owner is not None:
                    owner.attach(self)
            core.settle()
        elif core.handle is self:
            core.handle = None

    def _disown(self, owner: Incarnation) -> None:
        """`owner` ended: the handlers it set up here are removed (the messages stay)."""
        core = self._core
        if core is None or core.owner is not owner:
            return
        for type in list(self._handlers):
            self._set_handler(type, None)
        for type, entries in list(self._listeners.items()):
            for entry in entries:
                self._remove_entry(type, entry)
        core.owner = None

    def _close_reached(self, core: PortCore) -> None:
        """receive() reached the close marker: a close listener may now hear of it."""
        if "close" in self._listeners:
            self._attach(core)

    def _listeners_changed(self, type: str) -> None:
        core = self._core
        if core is None:
            return
        if type == "message" and "message" in self._listeners and core.receivers:
            busy = f"a message handler was added to this {self._noun}"
            core.wake_receivers(lambda: outcome.Error(trio.BusyResourceError(busy)))
        self._attach(core)

    def _detach(self, state: str, core: PortCore) -> None:
        """This object stops standing for `core`: wake whoever waits on it here."""
        self._core = None
        self._state = state
        if core.receivers:
            noun = self._noun
            core.wake_receivers(
                lambda: outcome.Error(trio.ClosedResourceError(f"the {noun} was {state}"))
            )
        if core.handle is self:
            core.handle = None
