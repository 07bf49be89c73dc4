"""MessageChannel and MessagePort: the web's API and trio's channel face over port cores.

A `MessagePort` stands for one `PortCore` (`_queue`) at a time. Transferring a port
moves its core, queue and all, to a new `MessagePort` and leaves the old object detached.
"""

from __future__ import annotations

import warnings
from abc import ABCMeta
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Final, NoReturn, Protocol, cast, final

import attrs
import trio

from ._clone import ATOMIC, clone, commit, serialize, transfer_list
from ._events import Listener
from ._exceptions import DataCloneError
from ._inbox import call_soon
from ._log import debug, logger
from ._owner import CURRENT
from ._queue import CLOSE, Item, Peer, PortCore
from ._receiver import Receiver, current_token
from ._threads import get_ident, outside_run, wrong_thread
from ._transfer import Transferable

__all__ = ["SEND_WINDOW", "MessageChannel", "MessagePort", "MessagePortStatistics"]

SEND_WINDOW: Final = 1024
"""How many unread messages a peer may hold before `MessagePort.send()` waits.

A message is read once it leaves the peer's queue, for a `receive()` or a handler. For a peer
in another process the sender knows of reads from acknowledgements the peer sends every 128
messages, so it may see the peer as up to 127 messages further behind than it is."""


class _NoPublicConstructor(ABCMeta):
    """Metaclass for classes only the library makes (as trio's `NoPublicConstructor`). A class
    says where its objects come from in a `_made_by` class attribute."""

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor; "
            f"{getattr(cls, '_made_by', 'the library makes them')}"
        )

    def _create(cls, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*args, **kwargs)


@final
@attrs.frozen
class MessagePortStatistics:
    """A snapshot of a port's state, from [`statistics()`][actors.MessagePort.statistics]."""

    queued: int
    """Messages waiting in the port message queue."""
    started: bool
    """Whether the queue is enabled (`start()`, `onmessage` or `receive()`)."""
    entangled: bool
    """Whether the port still has a peer to post to."""
    closed: bool
    """Whether `close()` was called on this object."""
    transferred: bool
    """Whether this object was transferred away (it is then detached, like a closed one)."""
    tasks_waiting_receive: int
    """Tasks blocked in `receive()` or `async for` on this port."""
    message_handlers: int
    """`onmessage` plus the `message` listeners: while above 0, handlers get the messages."""


@final
class MessagePort(Receiver, Transferable, metaclass=_NoPublicConstructor):
    """One end of a channel: post to its peer, receive what the peer posts.

    Made only by [`MessageChannel()`][actors.MessageChannel] and by transfer: calling
    `MessagePort()` raises `TypeError`. The web's API (`post_message`, `start`, `close`,
    `onmessage`, `onmessageerror`, `onclose`, event listeners) behaves exactly as the HTML
    standard says, with the decisions D1-D10 where it leaves a choice open (listed in
    [Side by side with the web API](../explanation/web-api.md#the-decisions-d1-to-d10));
    trio's channel face (`receive`, `receive_nowait`, `async for`, `send`, `aclose`) sits
    beside it.

    Each message is delivered once: to the `message` handlers if the port has any when the
    message is dispatched, otherwise to `receive()`.

    A port is a `trio.abc.ReceiveChannel[MessageEvent]`, so it goes wherever trio code takes
    one; `async for` and `async with` (which closes the port) come from there. (It is not a
    `trio.abc.SendChannel`: `send` takes a transfer list too.)
    """

    __slots__ = ("__weakref__",)
    _owned = True
    _made_by = "ports come from MessageChannel() and from transfer"

    def __repr__(self) -> str:
        core = self._core
        if core is None:
            return f"<MessagePort {self._state}>"
        flags = [core.id, "started" if core.enabled else "not started"]
        flags.append("entangled" if core.peer is not None else "disentangled")
        return f"<MessagePort {' '.join(flags)} queued={core.messages()}>"

    # -- the web's API --------------------------------------------------------------------

    def post_message(self, message: object, transfer: Iterable[object] | None = None) -> None:
        """Send a structured clone of `message` to the peer, moving what `transfer` lists.

        Synchronous and never blocks; delivery is asynchronous (no handler runs inside this
        call). Each object in `transfer` is detached here and its new copy arrives with the
        message (ports in `event.ports`, in transfer-list order).

        Posting on a port that is closed, transferred, or whose peer is gone does nothing
        (the standard's rule): the message is still cloned and the transfer list still moved,
        so a call that returns has always detached what it listed.

        Any thread may post: from a thread outside the trio run that owns the peer, the
        message is cloned in the calling thread, then delivered in the run, in the order
        that thread posted (dropped once the run has finished). Its transfer list may then
        hold `ArrayBuffer`s and ports of no run, not the ports of a run.

        Args:
            message: any value [`structured_clone`][actors.structured_clone] accepts; the
                peer gets a clone that shares nothing mutable with it.
            transfer: [`MessagePort`][actors.MessagePort] and
                [`ArrayBuffer`][actors.ArrayBuffer] objects to move rather than copy (any
                iterable), or `None`. A port inside `message` must be listed here.

        Raises:
            DataCloneError: `message` holds something that cannot be cloned, or `transfer`
                lists something not transferable, detached, duplicated, or this port itself.
                Nothing was sent and nothing detached.
            TypeError: `transfer` is not iterable.
            RuntimeError: called from a thread outside a trio run with a port of a run in
                `transfer`; nothing was sent and nothing detached.
        """
        core = self._core
        if transfer is None:
            data = message if type(message) in ATOMIC else clone(message)
            if core is not None and (peer := core.peer) is not None:
                if peer.thread == get_ident():
                    peer.deliver(data, ())
                else:  # a port of no run, or a post from outside the peer's run
                    _post_to(peer, data)
            return
        items = transfer_list(transfer, source=self)
        target = None if core is None else core.peer
        foreign = target is not None and outside_run(target.thread)
        if foreign:
            _refuse_run_ports(items)
        data, moves = serialize(message, items)
        peer_core: object = target  # a local core, or a relay's stand-in for a remote one
        doomed = target is not None and any(
            type(item) is MessagePort and item._core is peer_core for item, _ in moves
        )
        if not (target is None or doomed or foreign):
            if type(target) is not PortCore:
                if getattr(type(target), "prepare", None) is not None:  # a peer elsewhere,
                    wire = cast(_Wire, target)  # whose wire may refuse what clone took
                    _post_over_the_wire(wire.prepare, wire.send_prepared, data, moves)
                    return
            elif target.sink is not None and hasattr(target.sink, "check"):
                core_target = target  # kept here, sent to a reader elsewhere (a home)
                _post_over_the_wire(
                    cast(_Home, target.sink).check,
                    lambda _, shells: core_target.deliver(data, shells),
                    data,
                    moves,
                )
                return
        commit(moves)
        ports = tuple(shell for _, shell in moves if type(shell) is MessagePort)
        if target is None or doomed:
            if doomed:
                logger(port=None if core is None else core.id).warning(
                    "message_doomed",
                    reason="the target port was posted to itself; the channel is lost",
                )
            for port in ports:
                port._close()
            return
        if foreign:
            _post_from_thread(target, data, ports)
        else:
            target.deliver(data, ports)

    def _post_asking(self, message: object, reply: MessagePort) -> None:
        """`post_message(message, [reply])` for `ask`, whose reply port is fresh: it
        cannot be detached, duplicated, this port or its peer, so only `message` is checked.
        """
        data = message if type(message) in ATOMIC else clone(message)
        shell = reply._transfer_shell()
        reply._transfer_commit(shell)
        core = self._core
        target = None if core is None else core.peer
        if target is None:
            shell._close()
        else:
            target.deliver(data, (shell,))

    def start(self) -> None:
        """Enable the port message queue: queued and later messages are dispatched in order.

        Idempotent. `onmessage`, `receive()` and `async for` start the queue too; adding
        listeners does not. A port received in a message starts with its queue disabled.

        Raises:
            RuntimeError: called from a thread outside the trio run that owns the port (call
                it through `trio.from_thread.run_sync(port.start)`); nothing changed.
        """
        self._check_thread("start()", "call it through trio.from_thread.run_sync(port.start)")
        self._start()

    def close(self) -> None:
        """Disentangle this port and detach it. Idempotent; in its trio run it never raises.

        Messages still queued here are dropped (D2), and ports inside them are closed. The
        peer gets a `close` event after every message it already had, and its `receive()`
        then raises `trio.EndOfChannel`. Tasks blocked in this port's `receive()` get
        `trio.ClosedResourceError`.

        Raises:
            RuntimeError: called from a thread outside the trio run that owns the port (call
                it through `trio.from_thread.run_sync(port.close)`); nothing changed.
        """
        core = self._core
        if core is not None and outside_run(core.thread):
            self._check_thread("close()", "call it through trio.from_thread.run_sync(port.close)")
        self._close()

    def _close(self) -> None:
        """`close()` without the thread check, for the library's own closes."""
        core = self._core
        if core is None:
            return
        self._detach("closed", core)
        _close_ports_in(core.abandon())
        debug("port_closed", port=core.id)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the port as `aclose()` does, except for an actor's slot port left by an
        exception: that port belongs to the actor's slot, not to the crashing incarnation.

        So `async with inbox:` is harmless in an actor: when the block ends by a crash or by
        the supervisor's cancellation, the port stays with the slot and the next incarnation
        gets it, queue and all. A normal exit of the block closes it, as asked.
        """
        if exc_value is not None:
            owner = CURRENT.get()
            if owner is not None and owner.keeps(self):
                return
        await self.aclose()

    @property
    def onclose(self) -> Listener | None:
        """Handler for the `close` event: the peer was closed, collected, or lost (D5).

        The handler gets an [`Event`][actors.Event]. Setting it does not start the queue, and
        the event goes through the queue, after every message the port already had: a port
        that is never started never gets it.

        Raises:
            TypeError: it was set to something that is neither callable nor `None`.
            RuntimeError: it was set from a thread outside the trio run that owns the port
                (set it through `trio.from_thread.run_sync`); nothing changed.
        """
        return self._get_handler("close")

    @onclose.setter
    def onclose(self, handler: Listener | None) -> None:
        self._set_handler("close", handler)

    # -- trio's channel face --------------------------------------------------------------

    async def send(self, message: object, transfer: Iterable[object] | None = None) -> None:
        """`post_message` for trio code: the same, but it checkpoints, it tells you, and it
        waits while the peer is behind.

        Flow control: while the peer has [`SEND_WINDOW`][actors.SEND_WINDOW] or more
        messages it has not read yet (taken out of its queue by `receive()` or a handler),
        `send()` waits before it posts; wherever the peer lives, in this process or another.
        (`post_message` never waits.) Cancelled while it waits, it sends nothing.

        Args:
            message: as for `post_message`.
            transfer: as for `post_message`.

        Raises:
            trio.ClosedResourceError: this port was closed or transferred away (also while
                it waited); nothing was sent or detached.
            trio.BrokenResourceError: the peer is gone (also while it waited); nothing was
                sent or detached.
            DataCloneError: as for `post_message`; nothing was sent or detached.
            TypeError: `transfer` is not iterable.
            RuntimeError: called from a thread outside the trio run that owns the port (call
                it through `trio.from_thread.run(port.send, message)`); nothing was sent.
        """
        self._check_thread("send()", "call it through trio.from_thread.run(port.send, message)")
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            core = self._core
            if core is None:
                raise trio.ClosedResourceError(f"this MessagePort was {self._state}")
            peer = core.peer
            if peer is None:
                raise trio.BrokenResourceError("the peer port is closed")
            if peer.backlog() < SEND_WINDOW:
                break
            wake = trio.Event()  # set when the peer reads, closes or goes
            peer.watch(wake)
            try:
                await wake.wait()
            finally:
                peer.unwatch(wake)
        self.post_message(message, transfer)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def statistics(self) -> MessagePortStatistics:
        """A frozen snapshot of the port's queue, state and waiting tasks.

        Returns:
            The port's state now; the snapshot does not change afterwards.

        Raises:
            RuntimeError: called from a thread outside the trio run that owns the port (call
                it through `trio.from_thread.run_sync(port.statistics)`).
        """
        self._check_thread(
            "statistics()", "call it through trio.from_thread.run_sync(port.statistics)"
        )
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
        if core.sink is not None:  # a reader elsewhere: what it has read is not queued
            core.sink.sync()
        return MessagePortStatistics(
            queued=core.messages(),
            started=core.enabled,
            entangled=core.peer is not None,
            closed=False,
            transferred=False,
            tasks_waiting_receive=len(core.receivers),
            message_handlers=handlers,
        )

    # -- garbage collection ---------------------------------------------------------------

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is None:
            return
        # A port collected while entangled disentangles, so its peer gets `close` (D5). This
        # may run anywhere (inside our own code, another thread): defer to the trio run, in
        # batches (one wake-up of the run for many collected ports).
        entangled = core.peer is not None
        try:
            token = core.token or current_token()
            if token is None:
                _collected(core)
            else:
                call_soon(token, _collected, core, if_finished=_collected)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
        if entangled and not core.collectable:  # likely a mistake: say so, as a file does
            try:
                warnings.warn(
                    f"MessagePort {core.id} was garbage-collected while entangled, so its peer "
                    "got a close event. Close ports you are done with (port.close()), keep a "
                    "reference to the ports you use, and use PortCollection(weak=False) for a "
                    "group that should keep its members alive",
                    ResourceWarning,
                    stacklevel=2,
                    source=self,
                )
            except Warning:
                raise  # warnings are errors here: Python reports it as unraisable
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    # -- Transferable ---------------------------------------------------------------------

    def _transfer_shell(self) -> MessagePort:
        shell: MessagePort = MessagePort._create(None)
        shell._state = "in flight"
        return shell

    def _transfer_refusal(self) -> str | None:
        core = self._core
        if core is None:
            return f"MessagePort is already detached (it was {self._state})"
        if outside_run(core.thread):
            raise _transferred_from_outside()
        return None

    def _transfer_commit(self, shell: Transferable) -> None:
        assert isinstance(shell, MessagePort)
        core = self._core
        assert core is not None
        self._detach("transferred", core)
        core.enabled = False  # a received port starts with its queue disabled
        shell._core = core
        shell._state = "open"
        debug("port_transferred", port=core.id, queued=len(core.queue))

    def _clone_untransferred(self) -> NoReturn:
        raise DataCloneError(
            "a MessagePort in a message must also be listed in transfer", value=self
        )


def _transferred_from_outside() -> RuntimeError:
    return wrong_thread(
        "a MessagePort",
        "port",
        "transfer it from the run, through trio.from_thread.run_sync (for instance "
        "trio.from_thread.run_sync(port.post_message, message, transfer))",
        done="was listed in a transfer list",
    )


class _Wire(Protocol):
    """A peer in another node (the transport layer's `RemoteEnd`): what it sends is encoded
    for the wire, which may refuse what clone accepted."""

    def prepare(self, data: Any, ports: tuple[Any, ...]) -> Any:
        """`data` (a clone whose transferred ports are `ports`), encoded; changes nothing.

        Raises:
            DataCloneError: the wire cannot carry it.
        """

    def send_prepared(self, prepared: Any, ports: tuple[Any, ...]) -> None:
        """Send what `prepare` made, once the ports are committed."""


class _Home(Protocol):
    """A core's sink that sends what is queued to a reader in another node (a `HomeEnd`)."""

    def check(self, data: Any, ports: tuple[Any, ...]) -> None:
        """Raises `DataCloneError` if the wire cannot carry `data`; changes nothing."""


def _post_over_the_wire(
    prepare: Callable[[Any, tuple[Any, ...]], Any],
    send: Callable[[Any, tuple[Any, ...]], None],
    data: object,
    moves: list[tuple[Transferable, Transferable]],
) -> None:
    """Post `data` where the wire carries it: encoded (`prepare`) before anything is
    detached, so a refusal of the wire detaches nothing (D3); then `send`. The clone refers
    to the shells: the moved buffers' storage goes into theirs first (and back on a
    refusal), and the ports' shells are lent their cores while the encoder checks them."""
    buffers = [move for move in moves if type(move[1]) is not MessagePort]
    ports = [move for move in moves if type(move[1]) is MessagePort]
    shells = tuple(cast(MessagePort, shell) for _, shell in ports)
    commit(buffers)
    for (original, _), shell in zip(ports, shells, strict=True):
        shell._core = cast(MessagePort, original)._core
    try:
        prepared = prepare(data, shells)
    except BaseException:
        for original, moved in buffers:
            moved._transfer_commit(original)  # back where they were
        raise
    finally:
        for shell in shells:
            shell._core = None
    commit(ports)
    send(prepared, shells)


def _refuse_run_ports(items: list[Transferable]) -> None:
    """A post from outside the target's run moves no port of a run (ours or another's)."""
    for i, item in enumerate(items):
        if type(item) is MessagePort and item._core is not None and item._core.token is not None:
            raise wrong_thread(
                "MessagePort.post_message()",
                "peer port",
                f"transfer[{i}] is a MessagePort of a trio run, and only ArrayBuffers and ports "
                "of no run move from there: call it through "
                "trio.from_thread.run_sync(port.post_message, message, transfer)",
            )


def _post_to(target: Peer, data: object) -> None:
    """`post_message`'s fast path, when `target` is of no run or of another thread's run."""
    if target.thread is None:
        target.deliver(data, ())
    else:
        _post_from_thread(target, data, ())


def _post_from_thread(target: Peer, data: object, ports: tuple[MessagePort, ...]) -> None:
    """Hand a message posted outside `target`'s run to that run, in order for this thread."""
    assert target.token is not None  # outside its run: it belongs to one
    call_soon(target.token, _deliver_posted, target, data, ports, if_finished=_drop_posted)


def _deliver_posted(target: Peer, data: object, ports: tuple[MessagePort, ...]) -> None:
    """In the run: deliver a message posted from another thread, unless the channel closed
    while it was on its way."""
    if target.peer is None:
        _drop_posted(target, data, ports)
    else:
        target.deliver(data, ports)


def _drop_posted(target: Peer, data: object, ports: tuple[MessagePort, ...]) -> None:
    """A message posted from another thread that will never arrive: close its ports."""
    for port in ports:
        port._close()


def _collected(core: PortCore) -> None:
    """A MessagePort standing for `core` was garbage-collected (run from trio's token)."""
    try:
        queue = core.queue  # CLOSE is only ever last: a head that is not CLOSE is something
        if core.peer is not None or (queue and queue[0][0] is not CLOSE):
            debug("port_collected", port=core.id)
        _close_ports_in(core.abandon())
    except Exception as exc:  # raising here would crash the whole trio run
        logger(port=core.id).error("port_collect_failed", exc_info=exc)


def _close_ports_in(dropped: list[Item]) -> None:
    """Messages that will never be delivered: close the ports they carry (D2)."""
    for _, ports, _ in dropped:
        for port in ports:
            port._close()


@final
class MessageChannel:
    """A new channel: two entangled ports, `port1` and `port2`.

    What is posted on one port arrives at the other. Hand one port to another task (or
    transfer it in a message) and keep the other. Made inside an actor, both ports belong to
    it until one is transferred away: they are closed when its incarnation ends.
    """

    __slots__ = ("_port1", "_port2")

    def __init__(self) -> None:
        token = current_token()
        core1, core2 = PortCore(token), PortCore(token)
        core1.peer, core2.peer = core2, core1
        self._port1: MessagePort = MessagePort._create(core1)
        self._port2: MessagePort = MessagePort._create(core2)
        owner = CURRENT.get()
        if owner is not None:  # made inside an actor: closed when its incarnation ends
            owner.adopt(self._port1)
            owner.adopt(self._port2)

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
