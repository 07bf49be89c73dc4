"""PortCollection: an explicit group of ports to broadcast to, weakly held by default.

The WHATWG's withdrawn `PortCollection` (`add`, `remove`, `clear`, `iterate`, D10),
with Python's `len`/`iter`/`in`, our `post_message` to every member, and trio's
`await send()` with a bound per member and a policy for members that fall behind.
`weak=False` holds the members strongly instead, until they leave.

A member's backlog is what waits in the queue of its *peer* (the receiving end). The
policies are written down for users in `docs/explanation/broadcast.md`.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import final

import attrs
import trio

from ._clone import ATOMIC, clone, transfer_items
from ._exceptions import DataCloneError
from ._inbox import call_soon
from ._log import debug
from ._ports import MessagePort, _close_ports_in
from ._queue import LAGGED, Peer
from ._receiver import current_token
from ._threads import get_ident, outside_run, wrong_thread

__all__ = ["PortCollection", "PortCollectionStatistics", "SlowMemberPolicy"]


@final
class SlowMemberPolicy(enum.Enum):
    """What a [`PortCollection`][actors.PortCollection] does with a member whose backlog reached
    `max_queued`."""

    WAIT = "wait"
    """`send()` waits until every member has room (the slowest sets the pace).
    `post_message` never waits: under this policy it ignores the bound."""
    DROP_OLDEST = "drop_oldest"
    """Drop that member's oldest messages to make room; its receiver is told how many it
    lost ([`Lagged`][actors.Lagged] from `receive()`, or a `"lagged"` event to its `lagged`
    listeners; `message` handlers alone are not told)."""
    DISCONNECT = "disconnect"
    """Close that member's port: its peer gets `close` / `EndOfChannel`, and it leaves."""


@final
@attrs.frozen
class PortCollectionStatistics:
    """A snapshot of a collection, from [`statistics()`][actors.PortCollection.statistics]."""

    members: int
    """Live members now."""
    sent: int
    """Messages broadcast (one per `post_message` or `send`)."""
    delivered: int
    """Copies delivered to members, in all."""
    dropped: int
    """Messages dropped from members' queues under `DROP_OLDEST`."""
    lagged: int
    """`Lagged` notices issued under `DROP_OLDEST`: one per gap a receiver will see (a
    member that keeps falling behind before it reads has one notice that grows)."""
    disconnected: int
    """Members closed for being too slow under `DISCONNECT`."""


class _Member(weakref.ref[MessagePort]):
    """A weak reference to a member that knows its key (as `weakref.KeyedRef`)."""

    __slots__ = ("key",)
    key: int

    def __new__(cls, port: MessagePort, callback: Callable[[_Member], None], key: int) -> _Member:
        self = super().__new__(cls, port, callback)
        self.key = key
        return self

    def __init__(self, port: MessagePort, callback: Callable[[_Member], None], key: int) -> None:
        super().__init__(port, callback)  # type: ignore[call-arg]  # as weakref.KeyedRef


@final
class _Held:
    """A strongly held member, called like a weak reference (`ref()` gives the port)."""

    __slots__ = ("key", "port")

    def __init__(self, port: MessagePort, key: int) -> None:
        self.port = port
        self.key = key

    def __call__(self) -> MessagePort:
        return self.port


def _live(port: MessagePort | None) -> bool:
    core = None if port is None else port._core
    return core is not None and core.peer is not None


@final
class PortCollection:
    """A group of ports, in insertion order: broadcast to all of them.

    `add` is idempotent (a port keeps its first position); `remove` and `clear` are
    forgiving. A member is dropped as soon as it is closed, transferred away, garbage
    collected, or its peer is closed: `len()`, `iter()`, `in` and `iterate` only ever see
    live members. So a member whose owner actor stops for good leaves by itself.

    By default the members are held weakly, as the standard's `PortCollection` held them:
    a member nothing else refers to is garbage-collected at once, and leaves (a
    `ResourceWarning` says so, as for any entangled port collected). `weak=False` holds
    them strongly instead, until they leave (closed, transferred, peer gone, removed): the
    collection then lets go of them the next time it looks at its members (a broadcast,
    `len()`, iteration, `add`...).

    A member is the port you post on; what it sends waits at its peer, the receiving end.

    A collection belongs to the trio run it was made in (made outside any run: to the run of
    its first member that belongs to one, or else to the first run that uses it). Any thread
    may call `post_message`; every other call from a thread outside that run raises
    `RuntimeError` and changes nothing (make it through `trio.from_thread`).

    Args:
        ports: the first members, added in order.
        max_queued: the bound on each member's backlog (messages waiting at its peer).
        policy: what happens to a member that reaches the bound.
        weak: hold the members weakly (`True`, the default) or strongly (`False`).

    Raises:
        ValueError: `max_queued` is below 1.
        TypeError: `policy` is not a [`SlowMemberPolicy`][actors.SlowMemberPolicy], `weak`
            is not a `bool`, or `ports` holds something that is not a
            [`MessagePort`][actors.MessagePort].
    """

    __slots__ = (
        "__weakref__",
        "_dead",
        "_delivered",
        "_disconnected",
        "_dropped",
        "_gone",
        "_lagged",
        "_max_queued",
        "_members",
        "_policy",
        "_sent",
        "_thread",
        "_token",
        "_waiters",
        "_weak",
    )

    def __init__(
        self,
        ports: Iterable[MessagePort] = (),
        *,
        max_queued: int = 100,
        policy: SlowMemberPolicy = SlowMemberPolicy.WAIT,
        weak: bool = True,
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, not {max_queued}")
        if not isinstance(policy, SlowMemberPolicy):
            raise TypeError(f"policy must be a SlowMemberPolicy, not {policy!r}")
        if not isinstance(weak, bool):
            raise TypeError(f"weak must be True or False, not {weak!r}")
        self._weak = weak
        self._members: dict[int, _Member | _Held] = {}
        # Collected members' keys. The weakref callback only appends here, so a collection
        # during a loop over _members never changes its size; _prune() removes them.
        self._dead: list[int] = []
        self_ref = weakref.ref(self)

        def gone(member: _Member) -> None:
            collection = self_ref()
            if collection is not None:
                collection._dead.append(member.key)

        self._gone = gone
        self._max_queued = max_queued
        self._policy = policy
        self._waiters: set[trio.Event] = set()  # send() calls waiting for room
        self._sent = self._delivered = self._dropped = self._lagged = self._disconnected = 0
        # The run this collection belongs to (its token and thread), once known.
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: int | None = None
        for port in ports:
            self.add(port)

    def __repr__(self) -> str:
        live = sum(1 for ref in tuple(self._members.values()) if _live(ref()))
        held = "" if self._weak else " weak=False"
        return f"<PortCollection members={live} policy={self._policy.value}{held}>"

    # -- the run it belongs to ------------------------------------------------------------

    def _find_run(self, port: MessagePort | None = None) -> None:
        """Learn the run this collection belongs to: the current one, or else the run of
        `port` or of a member, if any belongs to one."""
        token = current_token()
        if token is not None:
            self._token, self._thread = token, get_ident()
            return
        ports = [port] if port is not None else [ref() for ref in tuple(self._members.values())]
        for each in ports:
            core = None if each is None else each._core
            if core is not None and core.token is not None:
                self._token, self._thread = core.token, core.thread
                return

    def _check_thread(self, member: str, fix: str, port: MessagePort | None = None) -> None:
        """Raise if the calling thread is outside the run this collection belongs to."""
        if self._thread is None:
            self._find_run(port)
        if outside_run(self._thread):
            raise wrong_thread(f"PortCollection.{member}", "collection", f"call it through {fix}")

    # -- membership (the WHATWG interface) ------------------------------------------------

    def add(self, port: MessagePort) -> None:
        """Add `port` at the end.

        Adding a member again does nothing (it keeps its place); adding a port that is
        closed, transferred or whose peer is gone does nothing.

        Args:
            port: the port to broadcast on; its peer receives.

        Raises:
            TypeError: `port` is not a [`MessagePort`][actors.MessagePort].
            RuntimeError: called from a thread outside the collection's trio run (call it
                through `trio.from_thread.run_sync(group.add, port)`); nothing changed.
        """
        if type(port) is not MessagePort:
            raise TypeError(f"a PortCollection holds MessagePorts, not {type(port).__name__}")
        self._check_thread("add()", "trio.from_thread.run_sync(group.add, port)", port)
        self._prune()
        key = id(port)
        ref = self._members.get(key)
        if (ref is not None and ref() is port) or not _live(port):
            return
        self._members[key] = _Member(port, self._gone, key) if self._weak else _Held(port, key)
        self._changed()

    def remove(self, port: MessagePort) -> None:
        """Take `port` out; nothing happens if it is not a member.

        Args:
            port: the member to take out.
        """
        self._check_thread("remove()", "trio.from_thread.run_sync(group.remove, port)")
        self._prune()
        ref = self._members.get(id(port))
        if ref is not None and ref() is port:
            del self._members[id(port)]
            self._changed()

    def clear(self) -> None:
        """Take every member out."""
        self._check_thread("clear()", "trio.from_thread.run_sync(group.clear)")
        if self._members:
            self._members.clear()
            self._changed()

    def iterate(self, callback: Callable[[MessagePort], object]) -> None:
        """Call `callback(port)` for each live member, in insertion order.

        It runs on a snapshot, so the callback may change the collection. An exception from
        the callback propagates, and the members after it are not visited.

        Args:
            callback: called with each member in turn; what it returns is ignored.
        """
        self._check_thread("iterate()", "trio.from_thread.run_sync(group.iterate, callback)")
        for port in self._snapshot():
            callback(port)

    def __len__(self) -> int:
        self._check_thread("__len__()", "trio.from_thread.run_sync(len, group)")
        return len(self._snapshot())

    def __iter__(self) -> Iterator[MessagePort]:
        self._check_thread("__iter__()", "trio.from_thread.run_sync(list, group)")
        return iter(self._snapshot())

    def __contains__(self, port: object) -> bool:
        self._check_thread("__contains__()", "trio.from_thread.run_sync(group.__contains__, port)")
        ref = self._members.get(id(port))
        return ref is not None and ref() is port and _live(port)

    def _snapshot(self) -> list[MessagePort]:
        """The live members in order; the dead ones are dropped on the way."""
        live: list[MessagePort] = []
        for ref in self._members.values():
            port = ref()
            if port is not None and _live(port):
                live.append(port)
            else:
                self._dead.append(ref.key)
        self._prune()
        return live

    def _prune(self) -> None:
        """Forget members that were collected or found dead."""
        dead, members = self._dead, self._members
        while dead:
            key = dead.pop()
            ref = members.get(key)
            if ref is not None and not _live(ref()):
                del members[key]

    def _changed(self) -> None:
        """Membership changed: waiting send() calls look again."""
        waiters, self._waiters = self._waiters, set()
        for event in waiters:
            event.set()

    # -- broadcasting ---------------------------------------------------------------------

    def post_message(self, message: object, transfer: Iterable[object] | None = None) -> None:
        """Send every live member its own structured clone of `message`. Never blocks.

        `message` is validated once, before anything is sent; immutable values are shared by
        all members instead of copied. A member at its bound is handled by the policy
        (`DROP_OLDEST`, `DISCONNECT`); under `WAIT` the bound does not apply here (use
        `await send()` to wait for room).

        Any thread may post: from a thread outside the collection's trio run, `message` is
        validated and cloned in the calling thread, then broadcast in the run, in the order
        that thread posted (dropped once the run has finished).

        Args:
            message: any value [`structured_clone`][actors.structured_clone] accepts.
            transfer: must be `None` or empty: one object cannot move to many ports.

        Raises:
            DataCloneError: `message` cannot be cloned (nobody got it), or `transfer` is
                not empty: one object cannot move to many ports.
            TypeError: `transfer` is neither `None` nor iterable.
        """
        data = self._validate(message, transfer)
        bounded = self._policy is not SlowMemberPolicy.WAIT
        if self._thread is None:
            self._find_run()
        if outside_run(self._thread):
            assert self._token is not None  # known with the thread
            call_soon(self._token, self._broadcast, data, bounded)
            return
        self._broadcast(data, bounded)

    async def send(self, message: object) -> None:
        """Broadcast `message` to every live member, respecting `max_queued`.

        Under `WAIT`, waits until every member's backlog is below the bound, then delivers
        to all members at once (members that leave meanwhile are not waited for; members
        that join are included). Under `DROP_OLDEST` and `DISCONNECT` it never waits: slow
        members are handled by the policy, so memory stays bounded. Cancelled while
        waiting: nothing was sent, and nothing of the call stays behind at the members.

        Args:
            message: any value [`structured_clone`][actors.structured_clone] accepts.

        Raises:
            DataCloneError: `message` cannot be cloned; nothing was sent.
            RuntimeError: called from a thread outside the collection's trio run (call it
                through `trio.from_thread.run(group.send, message)`); nothing was sent.
        """
        self._check_thread("send()", "trio.from_thread.run(group.send, message)")
        await trio.lowlevel.checkpoint_if_cancelled()
        data = self._validate(message, None)
        if self._policy is SlowMemberPolicy.WAIT:
            await self._wait_for_room()
            self._broadcast(data, bounded=False)  # nobody is full: nothing ran since the check
        else:
            self._broadcast(data, bounded=True)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def _wait_for_room(self) -> None:
        """Wait until no member is full."""
        bound = self._max_queued
        while True:
            full: list[Peer] = []
            for ref in self._members.values():
                port = ref()
                core = None if port is None else port._core
                peer = None if core is None else core.peer
                if peer is None:
                    self._dead.append(ref.key)
                elif peer.backlog() >= bound:  # wherever the peer lives
                    full.append(peer)
            self._prune()
            if not full:
                return
            wake = trio.Event()
            self._waiters.add(wake)
            for peer in full:
                peer.watch(wake)
            try:
                await wake.wait()
            finally:  # woken, cancelled or failed: leave no event behind at any member
                self._waiters.discard(wake)
                for peer in full:
                    peer.unwatch(wake)

    def _validate(self, message: object, transfer: Iterable[object] | None) -> object:
        if transfer_items(transfer):  # a TypeError for a non-iterable, as on ports
            raise DataCloneError(
                "a PortCollection cannot transfer: one object cannot move to many ports "
                "(post to one port with a transfer list instead)",
                value=transfer,
                path="transfer",
            )
        return message if type(message) in ATOMIC else clone(message)

    def _broadcast(self, data: object, bounded: bool) -> None:
        """One pass over the members: each live one gets its copy, the dead are noted.

        `data` is a fresh clone already: the first member gets it, and every member does
        when it is immutable all the way down; the others get clones of it. `bounded`
        applies the policy to members at `max_queued`.
        """
        self._sent += 1
        members, dead = self._members, self._dead
        shared = type(data) in ATOMIC
        spare = None
        if not shared and len(members) > 1:
            spare = clone(data)
            shared = spare is data
        delivered = 0
        if shared and not bounded:  # the common case, kept lean
            for ref in members.values():
                port = ref()
                core = None if port is None else port._core
                peer = None if core is None else core.peer
                if peer is None:
                    dead.append(ref.key)
                else:
                    peer.deliver(data, ())
                    delivered += 1
        else:
            for ref in members.values():
                port = ref()
                core = None if port is None else port._core
                peer = None if core is None else core.peer
                if port is None or peer is None:
                    dead.append(ref.key)
                    continue
                if bounded and peer.backlog() >= self._max_queued and self._too_slow(port, peer):
                    dead.append(ref.key)
                    continue
                if delivered == 0 or shared:
                    peer.deliver(data, ())
                elif spare is not None:
                    peer.deliver(spare, ())
                    spare = None
                else:
                    peer.deliver(clone(data), ())
                delivered += 1
        self._delivered += delivered
        self._prune()

    def _too_slow(self, port: MessagePort, peer: Peer) -> bool:
        """Apply the policy to a member at its bound; `True` if it was disconnected."""
        if self._policy is SlowMemberPolicy.DISCONNECT:
            self._disconnected += 1
            debug("member_disconnected", port=peer.id)
            port._close()
            return True
        queue = peer.queue
        new_gap = not (queue and queue[0][0] is LAGGED)  # else the notice there grows
        lost = peer.drop_oldest(peer.backlog() - self._max_queued + 1)
        _close_ports_in(lost)
        self._dropped += len(lost)
        self._lagged += new_gap
        return False

    def statistics(self) -> PortCollectionStatistics:
        """A frozen snapshot: members, messages sent and delivered, what the policy did.

        Returns:
            The counts now; the snapshot does not change afterwards.
        """
        self._check_thread("statistics()", "trio.from_thread.run_sync(group.statistics)")
        return PortCollectionStatistics(
            members=len(self._snapshot()),
            sent=self._sent,
            delivered=self._delivered,
            dropped=self._dropped,
            lagged=self._lagged,
            disconnected=self._disconnected,
        )
