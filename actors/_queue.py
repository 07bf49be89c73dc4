"""Port message queues, and the per-run dispatcher that delivers their events in post order.

A `PortCore` is one end of a channel: its message queue and its link to the other end. The
`MessagePort` objects that stand for it (one at a time; a transfer hands the core on) live in
`_ports`. The core talks to its peer only through `peer.deliver(item)` and the `peer`
link, so a peer can later live behind a relay without the port changing.

Every queued item carries a stamp from one global counter, taken when it was delivered. The
`Dispatcher` of a trio run dispatches the events of every started port that has listeners in
stamp order: the order in which they were posted, across ports, as the HTML standard's
"unshipped port message queue" does (rule 6). It drains ready events in a loop and yields to
other tasks every FAIRNESS_BUDGET events. A handler that returns an awaitable holds back only
its own port: the rest of the handlers run in a helper task, and the port rejoins the order
when they are done.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Protocol, final

import outcome
import trio

from ._events import Event, MessageEvent, message_event
from ._log import debug
from ._owner import CURRENT, Incarnation, adopt
from ._threads import get_ident

__all__ = [
    "AGAIN",
    "CLOSE",
    "FAIRNESS_BUDGET",
    "LAGGED",
    "MESSAGE_ERROR",
    "Dispatcher",
    "Item",
    "Peer",
    "PortCore",
    "Reads",
    "new_stamp",
]

FAIRNESS_BUDGET: Final = 64
"""How many events the dispatcher delivers before it lets other tasks run."""


@final
class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


CLOSE: Final = _Marker("close")
"""`item[0]` of the close marker: the peer disentangled. Always the last item of a queue."""
MESSAGE_ERROR: Final = _Marker("messageerror")
"""`item[0]` of a message that could not be deserialized (only relays make these)."""
AGAIN: Final = _Marker("again")
"""What a waiting `receive()` is woken with when the port is free again: it takes the queue's
head itself (never queued)."""
LAGGED: Final = _Marker("lagged")
"""`item[0]` of a notice that older messages were dropped; `item[1]` is how many. Only ever
the first item of a queue (`drop_oldest` puts it there and folds older notices into it)."""
MARKERS: Final = (CLOSE, MESSAGE_ERROR, LAGGED)

Item = tuple[Any, Any, int]
"""`(data, ports, stamp)` for a message; `(marker, detail, stamp)` for the markers."""

_stamps = itertools.count()

READ_FOR: Callable[[PortCore], Callable[[PortCore], Awaitable[None]] | None] | None = None
"""Set by a transport whose links a blocked `receive()` may read itself (the process link):
for a core a `receive()` is about to wait at, a function to await instead, or `None`. The
function registers the task at the core with a function that wakes it (`PortCore.receivers`),
waits until the link can be read or it is woken, reads what came (which may queue a message
at the core), and returns; `receive()` then looks again. So a message from another
process reaches its reader without a second task and a trip through the scheduler."""

woken = 0
"""How many `receive()` calls a delivery has woken so far (a link that saw this change while
it read lends itself to the next one: see `READ_FOR`)."""
_ids = itertools.count(1)
new_stamp = _stamps.__next__
"""A stamp for an item put in a queue by hand (a relay filling a moved port's queue)."""


class Peer(Protocol):
    """What a core needs of its peer: another core here, or a relay's stand-in for an end
    that lives elsewhere (in another process or host)."""

    peer: Any  # the core it is the peer of (a relay's stand-in), or None once it is gone
    queue: deque[Item]
    drained: dict[trio.Event, None] | None
    thread: int | None
    token: trio.lowlevel.TrioToken | None
    id: str

    def deliver(self, data: Any, ports: Any) -> None: ...
    def backlog(self) -> int: ...
    def watch(self, event: trio.Event) -> None: ...
    def unwatch(self, event: trio.Event) -> None: ...
    def taken(self) -> None: ...
    def drop_oldest(self, count: int) -> list[Item]: ...


class Sink(Protocol):
    """What reads a core's queue instead of this run's tasks (a reader in another process):
    told of each item added. The items stay queued until that reader has read them."""

    def pushed(self) -> None: ...

    def sync(self) -> None:
        """Let the items the reader has read leave the queue now."""


class Reads(Protocol):
    """Told each time a message leaves a queue for a `receive()` or a handler."""

    def took(self) -> None: ...


class Handle(Protocol):
    """What the dispatcher needs of the MessagePort that stands for a core."""

    _listeners: dict[str, tuple[Any, ...]]

    def _fire(self, event: Any) -> Coroutine[Any, Any, None] | None: ...


@final
class PortCore:
    """One end of a channel, shared by every MessagePort object that has stood for it."""

    __slots__ = (
        "busy",
        "collectable",
        "context",
        "dispatcher",
        "drained",
        "enabled",
        "generation",
        "handle",
        "id",
        "idle",
        "owner",
        "peer",
        "queue",
        "reads",
        "receivers",
        "scheduled",
        "sink",
        "thread",
        "token",
    )

    def __init__(self, token: trio.lowlevel.TrioToken | None) -> None:
        self.id = f"p{next(_ids)}"
        self.queue: deque[Item] = deque()
        self.enabled = False
        self.peer: Peer | None = None
        # Tasks blocked in receive(). Only non-empty while the queue is empty and enabled,
        # or while one that was woken for its head (taken out of here) has yet to take it.
        # A task that waits elsewhere meanwhile (reading a link for the run: `READ_FOR`) is
        # here with the function that wakes it there: it then takes from the queue itself.
        self.receivers: dict[trio.lowlevel.Task, Callable[[], None] | None] = {}
        # The port to dispatch events to, held strongly while it can still get any (so a
        # started port with listeners lives while entangled, as the standard's GC rule says).
        self.handle: Handle | None = None
        self.context: contextvars.Context | None = None  # handlers run in it
        # The actor incarnation that set the handlers up (None: not an actor). Once it has
        # halted (crashed, returned, asked to stop), its handlers get nothing more: what is
        # queued waits for the slot's next incarnation, or is dropped with its ports.
        self.owner: Incarnation | None = None
        self.dispatcher: Dispatcher | None = None  # of the run that last scheduled this core
        self.scheduled = False  # in the dispatcher's heap
        self.busy = False  # an async handler of this port is still running
        self.generation = 0  # counts abandoned handlers: a stale one must not release
        self.collectable = False  # collecting it while entangled is its normal end: no warning
        self.reads: Reads | None = None  # told of every message taken (a relay's flow control)
        self.sink: Sink | None = None  # reads the queue from elsewhere (see Sink)
        self.idle: trio.Event | None = None  # set when busy ends, if a receive() waits for it
        # The run this end belongs to (its token, and the thread that runs it), or None for
        # an end of no run (made outside any run, never started in one): any thread may use it.
        self.token = token
        self.thread = None if token is None else get_ident()
        # Set when an item leaves the queue (a dict as an ordered set: a waiter that stops
        # waiting takes its event back in O(1)).
        self.drained: dict[trio.Event, None] | None = None

    def join(self, token: trio.lowlevel.TrioToken | None) -> None:
        """An end of no run starts inside a run (`token`'s, this thread's): from now on it
        belongs to that run, and so does its peer if it belonged to none (a channel's two
        ends always belong to the same run)."""
        if token is None:
            return
        thread = get_ident()
        self.token, self.thread = token, thread
        peer = self.peer
        if peer is not None and peer.token is None:
            peer.token, peer.thread = token, thread

    def backlog(self) -> int:
        """Messages waiting in this end's queue (what a sender's flow control looks at)."""
        queue = self.queue
        return len(queue) - 1 if queue and queue[0][0] is LAGGED else len(queue)

    def messages(self) -> int:
        """Messages in this end's queue: every item but a lagged notice and the close marker.

        O(1): a `LAGGED` notice can only be first and `CLOSE` only last (a `MESSAGE_ERROR`
        item is a message).
        """
        queue = self.queue
        if not queue:
            return 0
        return len(queue) - (queue[0][0] is LAGGED) - (queue[-1][0] is CLOSE)

    def watch(self, event: trio.Event) -> None:
        """Set `event` when the next item leaves this queue, or the end is gone."""
        if self.drained is None:
            self.drained = {}
        self.drained[event] = None

    def unwatch(self, event: trio.Event) -> None:
        """Forget `event` (its waiter stopped waiting); nothing happens if it was set."""
        drained = self.drained
        if drained is not None:
            drained.pop(event, None)
            if not drained:
                self.drained = None

    def taken(self) -> None:
        """An item left the queue: wake whoever watches (call only when `drained` is set)."""
        drained, self.drained = self.drained, None
        for event in drained or ():
            event.set()

    def drop_oldest(self, count: int) -> list[Item]:
        """Drop the `count` oldest messages; a `LAGGED` notice at the head counts them.

        Returns the dropped messages (their ports must be closed).
        """
        queue = self.queue
        if not queue or self.sink is not None:  # what a sink has sent cannot be taken back
            return []
        stamp = queue[0][2]  # the notice takes the place of the oldest item
        dropped: list[Item] = []
        lagged = 0
        while queue and len(dropped) < count and queue[0][0] not in (CLOSE, MESSAGE_ERROR):
            item = queue.popleft()
            if item[0] is LAGGED:
                lagged += item[1]
            else:
                dropped.append(item)
        if dropped or lagged:
            queue.appendleft((LAGGED, lagged + len(dropped), stamp))
        if self.drained is not None:
            self.taken()
        return dropped

    def deliver(self, data: Any, ports: Any) -> None:
        """Add an item to this end's queue (called by the peer, or by a relay)."""
        item = (data, ports, next(_stamps))
        sink = self.sink
        if sink is not None:
            self.queue.append(item)
            sink.pushed()
            return
        receivers = self.receivers
        if receivers and not self.busy:
            if data is CLOSE:
                self.queue.append(item)
                self.wake_receivers(lambda: outcome.Value(item))
            elif self.queue:  # a receive() woken for the head takes it, and wakes the next
                self.queue.append(item)
            else:
                task = next(iter(receivers))
                wake = receivers.pop(task)
                if wake is not None:  # it reads a link: it takes the message itself
                    self.queue.append(item)
                    wake()
                    return
                global woken
                woken += 1
                self.busy = True  # it holds this message until its receive() returns it
                if self.reads is not None:
                    self.reads.took()
                trio.lowlevel.reschedule(task, outcome.Value(item))
                return
        else:
            self.queue.append(item)
        if self.handle is not None and not self.scheduled:
            self.settle()

    def deliver_all(self, values: list[Any]) -> None:
        """`deliver(value, ())` of each of `values`, in order, in fewer steps."""
        if self.sink is not None or self.receivers:
            for value in values:
                self.deliver(value, ())
            return
        append, stamps = self.queue.append, _stamps
        for value in values:
            append((value, (), next(stamps)))
        if self.handle is not None and not self.scheduled:
            self.settle()

    def release(self) -> None:
        """The message in hand (a handler's, or one `receive()` took) is done with: the next
        one may go, to a waiting `receive()` (which takes it from the queue itself) or to
        the handlers. One message at a time is what keeps a port's order (FIFO)."""
        self.busy = False
        idle = self.idle
        if idle is not None:  # a receive() waits for the port to be free
            self.idle = None
            idle.set()
        receivers = self.receivers
        if receivers and self.queue:
            task = next(iter(receivers))
            wake = receivers.pop(task)
            if wake is not None:
                wake()
            else:
                trio.lowlevel.reschedule(task, outcome.Value(AGAIN))
        elif self.handle is not None:
            self.settle()

    def forsake(self) -> None:
        """The async handler in hand was given up on (its actor's deadline passed): the
        port goes on without it, and its late end releases nothing."""
        self.generation += 1
        self.release()

    def head_wanted(self) -> bool:
        """Whether the oldest queued item has listeners to go to."""
        handle = self.handle
        if handle is None or not self.queue:
            return False
        head = self.queue[0][0]
        listeners = handle._listeners
        if head is CLOSE:
            return "close" in listeners
        if head is LAGGED:  # to its listeners, or skipped on the way to message handlers
            return "lagged" in listeners or "message" in listeners
        return "message" in listeners

    def schedule(self) -> None:
        """Put this core in line for dispatch if its head event has someone to go to."""
        if self.scheduled or self.busy or not self.enabled or not self.head_wanted():
            return
        head = self.queue[0]
        dispatcher = self.dispatcher
        if dispatcher is None or not dispatcher.alive:
            dispatcher = self.dispatcher = Dispatcher.current()
            if dispatcher is None:
                return  # outside trio.run: the next delivery inside a run schedules it
        self.scheduled = True
        dispatcher.push(self, head[2])

    def settle(self) -> None:
        """Let the port go if it has nothing to dispatch and no peer; else get in line.

        A port let go is attached again by whatever gives it work: `start()`, a new
        listener, or `receive()` reaching the close marker.
        """
        if self.peer is None and not self.busy and not self.head_wanted():
            self.handle = None
        else:
            self.schedule()

    def wake_receivers(self, result: Callable[[], outcome.Outcome[Any]]) -> None:
        """Wake every blocked receive() with its own `result()` (an outcome unwraps once)."""
        receivers, self.receivers = self.receivers, {}
        for task, wake in receivers.items():
            if wake is not None:  # it looks again itself, and finds what the others get
                wake()
            else:
                trio.lowlevel.reschedule(task, result())

    def disentangle(self) -> None:
        """Cut the link to the peer; the peer's queue gets the close marker."""
        peer = self.peer
        if peer is None:
            return
        self.peer = peer.peer = None
        peer.deliver(CLOSE, None)
        if peer.drained is not None:  # a sender waiting for room at the peer: no more room
            peer.taken()

    def abandon(self) -> list[Item]:
        """This end is gone for good: empty its queue, disentangle. Returns what was dropped."""
        self.enabled = False
        self.handle = None
        dropped = [item for item in self.queue if item[0] not in MARKERS]
        self.queue.clear()
        if self.drained is not None:
            self.taken()
        self.disentangle()
        if dropped:
            debug("messages_dropped", port=self.id, count=len(dropped))
        return dropped


@final
class Dispatcher:
    """The trio system task of one run that dispatches port events, in stamp order."""

    __slots__ = ("alive", "heap", "parked")

    _current: Final = trio.lowlevel.RunVar["Dispatcher"]("actors_dispatcher")

    def __init__(self) -> None:
        self.heap: list[tuple[int, PortCore]] = []
        self.parked: trio.lowlevel.Task | None = None
        self.alive = True

    @classmethod
    def current(cls) -> Dispatcher | None:
        """This run's dispatcher, started on first use; `None` outside `trio.run`."""
        try:
            current = cls._current.get()
        except LookupError:
            pass
        except RuntimeError:
            return None  # not inside trio.run
        else:
            return current if current.alive else None  # None while the run shuts down
        dispatcher = cls()
        cls._current.set(dispatcher)
        trio.lowlevel.spawn_system_task(dispatcher._run, name="actors port dispatcher")
        return dispatcher

    def push(self, core: PortCore, stamp: int) -> None:
        heapq.heappush(self.heap, (stamp, core))  # stamps are unique: cores never compared
        parked = self.parked
        if parked is not None:
            self.parked = None
            trio.lowlevel.reschedule(parked)

    async def _run(self) -> None:
        task = trio.lowlevel.current_task()
        heap = self.heap

        def abort(_: Any) -> trio.lowlevel.Abort:
            self.parked = None
            return trio.lowlevel.Abort.SUCCEEDED

        try:
            while True:
                budget = FAIRNESS_BUDGET
                while heap and budget:
                    _, core = heapq.heappop(heap)
                    core.scheduled = False
                    budget = self._drain(core, heap, budget)
                if heap:
                    await trio.lowlevel.checkpoint()
                else:
                    self.parked = task
                    await trio.lowlevel.wait_task_rescheduled(abort)
        finally:
            self.alive = False
            for _, core in heap:  # the run is ending: these wait for the next one
                core.scheduled = False
            heap.clear()

    def _drain(self, core: PortCore, heap: list[tuple[int, PortCore]], budget: int) -> int:
        """Dispatch `core`'s events while they are the oldest ready ones; return the budget."""
        queue = core.queue
        owner = core.owner
        while budget and not core.busy and core.enabled and queue:
            handle = core.handle
            if handle is None or (owner is not None and owner.halted):
                return budget  # a halted actor's handlers get nothing more
            data, ports, stamp = queue[0]
            if heap and heap[0][0] < stamp:
                break  # another port's event is older: back in line
            listeners = handle._listeners
            context = core.context
            if data is CLOSE:
                if "close" not in listeners:
                    return budget
                queue.popleft()
                event: Event | MessageEvent = Event("close", handle)  # type: ignore[arg-type]
            elif data is LAGGED:
                queue.popleft()
                if "lagged" not in listeners:
                    continue  # message handlers only: the gap goes unannounced
                event = message_event("lagged", ports, (), handle)  # type: ignore[arg-type]
            elif "message" not in listeners:
                return budget
            else:
                queue.popleft()
                if core.drained is not None:  # a sender waits for room (PortCollection.send)
                    core.taken()
                if core.reads is not None:
                    core.reads.took()
                if data is MESSAGE_ERROR:
                    event = message_event("messageerror", None, (), handle)  # type: ignore[arg-type]
                else:
                    if ports and context is not None:  # the handler's actor owns them
                        adopt(ports, context.get(CURRENT))
                    event = message_event("message", data, ports, handle)  # type: ignore[arg-type]
            budget -= 1
            pending = handle._fire(event) if context is None else context.run(handle._fire, event)
            if pending is not None:
                core.busy = True
                trio.lowlevel.spawn_system_task(
                    _finish_async,
                    core,
                    pending,
                    name=f"actors async handler {core.id}",
                    context=context,
                )
                return budget
        core.settle()
        return budget


async def _finish_async(core: PortCore, pending: Coroutine[Any, Any, None]) -> None:
    """Run the rest of an async handler (and the listeners after it), then free the port.

    A handler an actor set up is cancelled when that actor's incarnation ends.
    """
    generation = core.generation
    try:
        owner = CURRENT.get()
        if owner is None:
            await pending
        else:
            with owner.handler_scope(core):
                await pending
    finally:
        if core.generation == generation:  # else it was given up on, and the port went on
            core.release()
