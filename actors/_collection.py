"""PortCollection: an explicit, weakly held group of ports to broadcast to.

The WHATWG's withdrawn ``PortCollection`` (``add``, ``remove``, ``clear``, ``iterate``, D10),
with Python's ``len``/``iter``/``in``, our ``post_message`` to every member, and trio's
``await send()`` with a bound per member and a policy for members that fall behind.

A member's backlog is what waits in the queue of its *peer* (the receiving end). The
policies are written down for users in ``docs/broadcast.md``.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import final

import attrs
import trio

from ._clone import ATOMIC, clone
from ._exceptions import DataCloneError
from ._log import debug
from ._ports import MessagePort, _close_ports_in
from ._queue import PortCore

__all__ = ["PortCollection", "PortCollectionStatistics", "SlowMemberPolicy"]


@final
class SlowMemberPolicy(enum.Enum):
    """What a ``PortCollection`` does with a member whose backlog reached ``max_queued``."""

    WAIT = "wait"
    """``send()`` waits until every member has room (the slowest sets the pace).
    ``post_message`` never waits: under this policy it ignores the bound."""
    DROP_OLDEST = "drop_oldest"
    """Drop that member's oldest messages to make room; its receiver is told how many it
    lost (``Lagged`` from ``receive()``, or a ``"lagged"`` event)."""
    DISCONNECT = "disconnect"
    """Close that member's port: its peer gets ``close`` / ``EndOfChannel``, and it leaves."""


@final
@attrs.frozen
class PortCollectionStatistics:
    """A snapshot of a collection, from ``PortCollection.statistics()``."""

    members: int
    """Live members now."""
    sent: int
    """Messages broadcast (one per ``post_message`` or ``send``)."""
    delivered: int
    """Copies delivered to members, in all."""
    dropped: int
    """Messages dropped from members' queues under ``DROP_OLDEST``."""
    lagged: int
    """Times a member fell behind and lost messages under ``DROP_OLDEST``."""
    disconnected: int
    """Members closed for being too slow under ``DISCONNECT``."""


def _live(port: MessagePort | None) -> bool:
    core = None if port is None else port._core
    return core is not None and core.peer is not None


def _peer(port: MessagePort) -> PortCore:
    """The receiving end of a live member (what its backlog is measured at)."""
    core = port._core
    assert core is not None
    assert core.peer is not None
    return core.peer


@final
class PortCollection:
    """A group of ports, held weakly, in insertion order: broadcast to all of them.

    ``add`` is idempotent (a port keeps its first position); ``remove`` and ``clear`` are
    forgiving. A member is dropped as soon as it is closed, transferred away, garbage
    collected, or its peer is closed: ``len()``, ``iter()``, ``in`` and ``iterate`` only ever
    see live members. So a member whose owner actor stops for good leaves by itself.

    ``max_queued`` bounds each member's backlog (messages waiting at its peer) and ``policy``
    says what happens to a member that reaches it (``SlowMemberPolicy``).
    """

    __slots__ = (
        "__weakref__",
        "_delivered",
        "_disconnected",
        "_dropped",
        "_lagged",
        "_max_queued",
        "_members",
        "_policy",
        "_sent",
        "_waiters",
    )

    def __init__(
        self,
        ports: Iterable[MessagePort] = (),
        *,
        max_queued: int = 100,
        policy: SlowMemberPolicy = SlowMemberPolicy.WAIT,
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, not {max_queued}")
        if not isinstance(policy, SlowMemberPolicy):
            raise TypeError(f"policy must be a SlowMemberPolicy, not {policy!r}")
        self._members: dict[int, weakref.ref[MessagePort]] = {}
        self._max_queued = max_queued
        self._policy = policy
        self._waiters: set[trio.Event] = set()  # send() calls waiting for room
        self._sent = self._delivered = self._dropped = self._lagged = self._disconnected = 0
        for port in ports:
            self.add(port)

    def __repr__(self) -> str:
        return f"<PortCollection members={len(self)} policy={self._policy.value}>"

    # -- membership (the WHATWG interface) ------------------------------------------------

    def add(self, port: MessagePort) -> None:
        """Add ``port`` at the end. Adding a member again does nothing (it keeps its place);
        adding a port that is closed, transferred or whose peer is gone does nothing."""
        if type(port) is not MessagePort:
            raise TypeError(f"a PortCollection holds MessagePorts, not {type(port).__name__}")
        key = id(port)
        ref = self._members.get(key)
        if (ref is not None and ref() is port) or not _live(port):
            return
        members = self._members

        def gone(dead: weakref.ref[MessagePort]) -> None:
            if members.get(key) is dead:
                del members[key]

        members[key] = weakref.ref(port, gone)
        self._changed()

    def remove(self, port: MessagePort) -> None:
        """Take ``port`` out; nothing happens if it is not a member."""
        ref = self._members.get(id(port))
        if ref is not None and ref() is port:
            del self._members[id(port)]
            self._changed()

    def clear(self) -> None:
        """Take every member out."""
        if self._members:
            self._members.clear()
            self._changed()

    def iterate(self, callback: Callable[[MessagePort], object]) -> None:
        """Call ``callback(port)`` for each live member, in insertion order (on a snapshot,
        so the callback may change the collection)."""
        for port in self._snapshot():
            callback(port)

    def __len__(self) -> int:
        return len(self._snapshot())

    def __iter__(self) -> Iterator[MessagePort]:
        return iter(self._snapshot())

    def __contains__(self, port: object) -> bool:
        ref = self._members.get(id(port))
        return ref is not None and ref() is port and _live(port)

    def _snapshot(self) -> list[MessagePort]:
        """The live members in order; the dead ones are dropped on the way."""
        live: list[MessagePort] = []
        dead: list[int] = []
        for key, ref in self._members.items():
            port = ref()
            if port is not None and _live(port):
                live.append(port)
            else:
                dead.append(key)
        for key in dead:
            del self._members[key]
        return live

    def _changed(self) -> None:
        """Membership changed: waiting send() calls look again."""
        waiters, self._waiters = self._waiters, set()
        for event in waiters:
            event.set()

    # -- broadcasting ---------------------------------------------------------------------

    def post_message(self, message: object, transfer: Iterable[object] | None = None) -> None:
        """Send every live member its own structured clone of ``message``. Never blocks.

        ``message`` is validated once, before anything is sent; immutable values are
        shared by all members instead of copied. A member at its bound is handled by the
        policy (``DROP_OLDEST``, ``DISCONNECT``); under ``WAIT`` the bound does not apply
        here (use ``await send()`` to wait for room).

        Raises:
            DataCloneError: ``message`` cannot be cloned (nobody got it), or ``transfer`` is
                not empty: one object cannot move to many ports.
        """
        data = self._validate(message, transfer)
        self._deliver(data, self._snapshot(), bounded=self._policy is not SlowMemberPolicy.WAIT)

    async def send(self, message: object) -> None:
        """Broadcast ``message`` to every live member, respecting ``max_queued``.

        Under ``WAIT``, waits until every member's backlog is below the bound, then
        delivers to all members at once (members that leave meanwhile are not waited
        for; members that join are included). Under ``DROP_OLDEST`` and ``DISCONNECT`` it
        never waits: slow members are handled by the policy, so memory stays bounded.
        Cancelled while waiting: nothing was sent.

        Raises:
            DataCloneError: ``message`` cannot be cloned; nothing was sent.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        data = self._validate(message, None)
        if self._policy is SlowMemberPolicy.WAIT:
            members = await self._wait_for_room()
        else:
            members = self._snapshot()
        self._deliver(data, members, bounded=True)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def _wait_for_room(self) -> list[MessagePort]:
        """Wait until no member is full; return the members at that moment."""
        bound = self._max_queued
        while True:
            members = self._snapshot()
            full = [p for p in members if _peer(p).backlog() >= bound]
            if not full:
                return members
            wake = trio.Event()
            self._waiters.add(wake)
            for port in full:
                _peer(port).watch(wake)
            try:
                await wake.wait()
            finally:
                self._waiters.discard(wake)

    def _validate(self, message: object, transfer: Iterable[object] | None) -> object:
        if transfer is not None and list(transfer):
            raise DataCloneError(
                "a PortCollection cannot transfer: one object cannot move to many ports "
                "(post to one port with a transfer list instead)",
                value=transfer,
                path="transfer",
            )
        return message if type(message) in ATOMIC else clone(message)

    def _deliver(self, data: object, members: list[MessagePort], bounded: bool) -> None:
        """Give each member its copy: ``data`` itself to the first (it is a fresh clone
        already), and to everyone when it is immutable all the way down."""
        self._sent += 1
        spare = None
        shared = type(data) in ATOMIC
        if not shared and len(members) > 1:
            spare = clone(data)
            shared = spare is data
        first = True
        for port in members:
            peer = _peer(port)
            if bounded and peer.backlog() >= self._max_queued:
                if self._policy is SlowMemberPolicy.DISCONNECT:
                    self._disconnected += 1
                    debug("member_disconnected", port=peer.id)
                    port.close()
                    continue
                lost = peer.drop_oldest(peer.backlog() - self._max_queued + 1)
                _close_ports_in(lost)
                self._dropped += len(lost)
                self._lagged += 1
            if first or shared:
                peer.deliver(data, ())
            elif spare is not None:
                peer.deliver(spare, ())
                spare = None
            else:
                peer.deliver(clone(data), ())
            first = False
            self._delivered += 1

    def statistics(self) -> PortCollectionStatistics:
        """A frozen snapshot: members, messages sent and delivered, what the policy did."""
        return PortCollectionStatistics(
            members=len(self),
            sent=self._sent,
            delivered=self._delivered,
            dropped=self._dropped,
            lagged=self._lagged,
            disconnected=self._disconnected,
        )
