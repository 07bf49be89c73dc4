"""A channel's end on this node whose peer is on another (`RemoteEnd`), and what a moved end
leaves behind (`Forward`): the per-channel half of the routes; `node.py` holds the node that
routes frames between them and its rules."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final, final

import trio

from .._log import logger
from .._queue import CLOSE, PortCore
from . import codec
from .fds import Fds
from .frames import ACK, DONE, MOVED_ACK, USER
from .frames import CLOSE as F_CLOSE

if TYPE_CHECKING:
    from .node import Node

__all__ = [
    "ACK_EVERY",
    "EARLY_WINDOW",
    "SEQ_LIMIT",
    "Forward",
    "InBySeq",
    "RemoteEnd",
    "next_ack",
]

ACK_EVERY: Final = 128
"""A sender asks for a read acknowledgement every this many messages (flow control)."""

EARLY_WINDOW: Final = 1 << 24
"""How far past the next due message an end accepts one (and keeps it until its turn): about
16.8 million. Honest frames arrive early only during a move, by as many as were still on the
old path; a frame further ahead breaks its channel. So an end keeps at most this many early
messages, and no more than its peer sent."""

SEQ_LIMIT: Final = 1 << 62
"""Sequence numbers in a port's descriptor are below this (so that counting on from them
stays a msgpack integer)."""

_NO_BUFFERS: Final[list[int]] = []  # never changed: a message with no shared buffers


class InBySeq:
    """What an end that receives numbered messages does with one out of turn: the rule of
    node.py's docstring, the same for a `RemoteEnd` and a `HomeEnd` (which give the
    attributes and the method named here)."""

    __slots__ = ()

    recv_seq: int
    early: dict[int, tuple[Any, ...]]
    node: Node

    def broken(self, reason: str) -> None:
        raise NotImplementedError

    def _out_of_turn(
        self,
        seq: int,
        payload: bytes,
        descriptors: list[Any],
        ask: bool,
        buffers: list[int],
        fds: Fds | None,
    ) -> None:
        """Message `seq` came before its turn (kept, up to EARLY_WINDOW ahead), again
        (dropped), or from a peer that lies (the channel breaks)."""
        due = self.recv_seq
        if due < seq <= due + EARLY_WINDOW and seq not in self.early:
            kept = Fds(fds.take_all()) if fds else None
            self.early[seq] = (payload, descriptors, ask, buffers, kept)
            return
        self.node.drop(descriptors, buffers, fds)  # never delivered: its ports go
        if seq < 1 or seq > due + EARLY_WINDOW:
            self.broken(f"message {seq} when {due} is due")


@final
class RemoteEnd(InBySeq):
    """A local core's peer when that peer lives on another node: the core posts to it, and
    it receives for the core. It has what the core looks at on a peer (`deliver`, `peer`,
    `queue`, `backlog`, the drain watchers, `thread`, `token`, `id`)."""

    __slots__ = (
        "ack_asked",
        "ack_due",
        "ack_upto",
        "acked",
        "behind",
        "cid",
        "closing",
        "cursor",
        "drained",
        "early",
        "end",
        "hops",
        "id",
        "local",
        "location",
        "node",
        "peer",
        "peer_hops",
        "queue",
        "read",
        "recv_seq",
        "send_seq",
        "thread",
        "token",
    )

    def __init__(
        self,
        node: Node,
        local: PortCore,
        cid: int,
        end: int,
        location: int,
        send_seq: int = 1,
        recv_seq: int = 1,
        hops: int = 0,
        peer_hops: int = 0,
    ) -> None:
        self.node = node
        self.local = local
        self.peer: PortCore | None = local  # as a PortCore's peer.peer is the core itself
        self.cid = cid
        self.end = end  # the local core's end; the remote one is 1 - end
        self.location = location
        self.hops = hops  # how many times this end moved from node to node
        self.peer_hops = peer_hops  # ... and its peer, as of the news that it is at `location`
        # The forwards this end's moves left that it has not released yet: [hops, node,
        # last], `last` the peer's last message sent the old way (-2: not known yet; -1:
        # the peer was gone, so until its close is here). None if none.
        self.behind: list[list[int]] | None = None
        self.send_seq = send_seq  # the seq of the next message sent
        self.recv_seq = recv_seq  # the seq of the next message to deliver
        self.early: dict[int, tuple[Any, ...]] = {}  # came before their turn, by seq:
        # (payload, descriptors, ask, buffers, fds)
        self.closing: int | None = None  # the peer closed after this seq
        self.acked = send_seq - 1  # the peer has read up to this seq
        self.ack_asked = 0  # the last seq sent with a request to acknowledge
        self.read = recv_seq - 1  # the last seq the local side has read
        self.ack_due = 0  # the first seq the peer asked to hear of that it has not heard of
        self.ack_upto = 0  # the last seq it asked to hear of
        self.queue: deque[Any] = deque()  # always empty: what waits, waits over there
        self.drained: dict[trio.Event, None] | None = None
        self.thread = local.thread
        self.token = local.token
        self.id = f"{local.id}>{location:x}"
        # Where this end writes how many messages it has read, in the page it shares with
        # the node that keeps its messages until they are read (a HomeEnd), if it has one.
        self.cursor: int | None = None
        local.reads = self
        node.ends[cid, end] = self
        # Back where it once left: the forward it left here is stale (frames for it find it
        # first), and would pass them back to where it was once it closes, or to this very
        # node, round and round; and it would report the end lost with that place.
        node.forwards.pop((cid, end), None)

    def __repr__(self) -> str:
        return f"<RemoteEnd {self.cid:x}/{self.end} at {self.location:x}>"

    # -- what the local core does to its peer ---------------------------------------------

    def deliver(self, data: Any, ports: Any) -> None:
        """The local core posts `data` (a clone, its ports already moved) or its close."""
        if data is CLOSE:
            self._closed_here()
            return
        payload = None if ports else codec.plain(data)  # plain data: no clone walk
        if payload is not None:
            self.send(payload, (), _NO_BUFFERS, None)
            return
        payload, buffers, fds = self.node.pack(data, ports, None)
        self.send(payload, ports, buffers, fds)

    def prepare(self, data: Any, ports: Any) -> tuple[bytes, list[int], Fds | None]:
        """`data` (a clone whose transferred ports are `ports`), packed (`Node.pack`), before
        the sender detaches anything.

        Raises:
            DataCloneError: the wire cannot carry `data` (nothing changed).
        """
        return self.node.pack(data, ports, None)

    def send_prepared(self, prepared: tuple[bytes, list[int], Fds | None], ports: Any) -> None:
        """Send what `prepare` packed, its ports committed; if that fails, its fds close."""
        payload, buffers, fds = prepared
        try:
            self.send(payload, ports, buffers, fds)
        except BaseException:
            if fds:
                fds.close()
            raise

    def send(self, payload: bytes, ports: Any, buffers: list[int], fds: Fds | None) -> None:
        """Send a packed message (`Node.pack`): its ports leave for the peer's node."""
        node = self.node
        seq = self.send_seq
        self.send_seq = seq + 1
        ask = seq - self.ack_asked >= ACK_EVERY
        if ask:
            self.ack_asked = seq
        if not ports and not buffers and not fds:  # the common case: it may go in a batch
            node.send_user(self.location, self.cid, 1 - self.end, seq, payload, ask)
            return
        if ports:
            if fds is None:
                fds = Fds()  # the queued messages of its ports may share buffers too
            descriptors = [node.describe(port, self.location, fds) for port in ports]
        else:
            descriptors = []
        fields: tuple[object, ...] = (self.cid, 1 - self.end, seq, payload, descriptors, ask)
        if buffers:
            fields = (*fields, buffers)
        node.send(self.location, USER, *fields, fds=fds or None)
        if ports:
            node.announce_moves()

    def backlog(self) -> int:
        """Messages sent that the peer has not said it read (as far as we know)."""
        return self.send_seq - 1 - self.acked

    def watch(self, event: trio.Event) -> None:
        if self.drained is None:
            self.drained = {}
        self.drained[event] = None

    def unwatch(self, event: trio.Event) -> None:
        if self.drained is not None:
            self.drained.pop(event, None)

    def taken(self) -> None:
        drained, self.drained = self.drained, None
        for event in drained or ():
            event.set()

    def drop_oldest(self, count: int) -> list[Any]:
        """What is sent is over there: nothing can be dropped from here."""
        return []

    def _closed_here(self) -> None:
        """The local core closed (or was collected): tell the peer, after our last message."""
        node = self.node
        node.ends.pop((self.cid, self.end), None)
        node.send(self.location, F_CLOSE, self.cid, 1 - self.end, self.send_seq - 1)
        self._release(None)
        self._drop_early()
        self.local.reads = None
        if self.drained is not None:
            self.taken()

    # -- what arrives for the local core --------------------------------------------------

    def on_user(
        self,
        seq: int,
        payload: bytes,
        descriptors: list[Any],
        ask: bool,
        buffers: list[int],
        fds: Fds | None,
    ) -> None:
        """A message for the local core; `fds` (this frame's) are taken, or closed by the
        caller."""
        if seq != self.recv_seq:
            self._out_of_turn(seq, payload, descriptors, ask, buffers, fds)
            return
        self._accept(payload, descriptors, ask, buffers, fds)
        early = self.early
        while early and self.recv_seq in early:
            self._accept(*early.pop(self.recv_seq))
        if self.closing is not None:
            self._maybe_closed()

    def take_plain(self, seq: int, payload: bytes, ask: bool) -> bool:
        """`on_user`'s common case, in fewer steps: message `seq` in its turn, with no ports
        and no shared buffers, and nothing early, closing or behind. `False`, and nothing
        done, when it is not that case."""
        if seq != self.recv_seq or self.early or self.closing is not None or self.behind:
            return False
        self.recv_seq = seq + 1
        if ask:
            self.asked(seq)
        try:
            data = codec.decode(payload, (), ())
        except codec.DecodeError:
            data, _ = self.node.unpack(payload, [])  # a messageerror, and a log line
        self.local.deliver(data, ())
        return True

    def take_all_plain(self, first: int, payloads: list[bytes], asks: list[int]) -> bool:
        """`take_plain` of a USERS frame's messages, all at once; `False`, and nothing done,
        when they are not all that case."""
        if first != self.recv_seq or self.early or self.closing is not None or self.behind:
            return False
        self.recv_seq = first + len(payloads)
        for offset in asks:
            self.asked(first + offset)
        decode = codec.decode
        values = []
        for payload in payloads:
            try:
                values.append(decode(payload, (), ()))
            except codec.DecodeError:
                values.append(self.node.unpack(payload, [])[0])  # a messageerror, logged
        self.local.deliver_all(values)
        return True

    def _accept(
        self,
        payload: bytes,
        descriptors: list[Any],
        ask: bool,
        buffers: list[int],
        fds: Fds | None,
    ) -> None:
        self.recv_seq += 1
        if self.behind:
            self._release(self.recv_seq - 1)
        if ask:
            self.asked(self.recv_seq - 1)
        data, ports = self.node.unpack(payload, descriptors, buffers, fds)
        if fds:
            fds.close()  # more than its buffers and ports took: a peer's lie
        self.local.deliver(data, ports)

    def on_close(self, last: int) -> None:
        arrived = self.recv_seq - 1
        if not arrived <= last <= arrived + EARLY_WINDOW:
            self.broken(f"closed after message {last} when {arrived} arrived")
            return
        self.closing = last
        self._maybe_closed()

    def broken(self, reason: str) -> None:
        """The peer sent what no honest peer sends: the channel ends here, as if the peer had
        died (after what arrived in order), and the peer is told we closed."""
        logger(node=self.node.name).warning(
            "channel_broken", channel=f"{self.cid:x}/{self.end}", reason=reason
        )
        self._closed_here()
        self._peer_gone()

    def _maybe_closed(self) -> None:
        if self.closing is not None and self.recv_seq > self.closing:
            self.node.ends.pop((self.cid, self.end), None)
            if self.early:  # past the close: never delivered
                self._drop_early()
            self._peer_gone()

    def on_lost(self) -> None:
        """The peer is gone without a word: what arrived in order is all there will be."""
        self.node.ends.pop((self.cid, self.end), None)
        self._drop_early()
        self._peer_gone()

    def _peer_gone(self) -> None:
        self._release(None)
        local = self.local
        self.peer = None
        local.reads = None
        if local.peer is self:
            local.peer = None
            local.deliver(CLOSE, None)
            if local.drained is not None:
                local.taken()
        if self.drained is not None:
            self.taken()

    def on_moved(self, location: int, forward: int, hops: int) -> None:
        """The peer moved to `location` (its move number `hops`); the forward it left at
        `forward` passes on what we sent it. News older than what we know (a forward passed
        it on, late) does not send us back. The peer hears how far we sent the old way
        (`MOVED_ACK`, to where it is now as far as we know): it releases the forward once it
        has had all of that."""
        if hops > self.peer_hops:
            self.peer_hops = hops
            self.location = location
        last = self.send_seq - 1
        self.node.send(self.location, MOVED_ACK, self.cid, 1 - self.end, last, hops, forward)

    def on_moved_ack(self, last: int, hops: int, forward: int) -> None:
        """The peer had sent up to `last` (-1: it was gone) when it heard of our move
        `hops`, which left a forward at `forward`: release it once we have all that."""
        for entry in self.behind or ():
            if entry[0] == hops and entry[1] == forward and entry[2] == -2:
                entry[2] = last
                if last >= 0:
                    self._release(self.recv_seq - 1)
                return

    def _release(self, received: int | None) -> None:
        """Release (`DONE`) the forwards whose peer's last message the old way is among the
        `received` (None: all of them: nothing more comes, this end or its peer is gone)."""
        behind = self.behind
        if not behind:
            return
        keep = []
        for entry in behind:
            hops, forward, last = entry
            if received is None or 0 <= last <= received:
                self.node.send(forward, DONE, self.cid, self.end, hops)
            else:
                keep.append(entry)
        self.behind = keep or None

    def stranded_by(self, lost: set[int]) -> None:
        """A node this end moved through is lost before the move settled: what its peer sent
        that way may be lost, so the channel ends at both ends (after what arrived in
        order), rather than miss messages or wait for them for ever."""
        logger(node=self.node.name).info(
            "channel_stranded",
            channel=f"{self.cid:x}/{self.end}",
            lost=[f"{entry[1]:x}" for entry in self.behind or () if entry[1] in lost],
        )
        self._closed_here()
        self._peer_gone()

    def stranded(self, lost: set[int]) -> bool:
        """Whether a forward this end has not released is on one of the `lost` nodes: what
        its peer sent that way may be lost with it."""
        return any(entry[1] in lost for entry in self.behind or ())

    def on_ack(self, read: int) -> None:
        if read > self.acked:
            self.acked = min(read, self.send_seq - 1)
            if self.drained is not None:
                self.taken()

    def _drop_early(self) -> None:
        early, self.early = self.early, {}
        for _, descriptors, _, buffers, fds in early.values():
            self.node.drop(descriptors, buffers, fds)

    # -- read acknowledgements (called by the local core as it gives out messages) --------

    def took(self) -> None:
        """The local side took one message out of its queue (to a receive() or a handler)."""
        self.read += 1
        cursor = self.cursor
        if cursor is not None:  # before the reader's code runs: a death after it loses none
            page = self.node.up_page
            if page is not None:
                page[cursor] = self.read
        due = self.ack_due
        if due and self.read >= due:
            self.ack_due = next_ack(self.read, self.ack_upto)
            self.node.send(self.location, ACK, self.cid, 1 - self.end, self.read)

    def asked(self, seq: int) -> None:
        """The peer asks to hear when `seq` has been read (it asks every ACK_EVERY)."""
        if not self.ack_due:
            self.ack_due = seq
        self.ack_upto = max(self.ack_upto, seq)


def next_ack(read: int, upto: int) -> int:
    """After an acknowledgement of `read`: the next seq to acknowledge at, or 0 for none
    (asks come every ACK_EVERY messages, so the next is at most that far)."""
    return min(read + ACK_EVERY, upto) if upto > read else 0


@final
class Forward:
    """Where an end that left this node went: what still comes here for it is passed on,
    until the end releases it (`DONE`, naming the move `hops`): once it has had every message
    its peer sent before it heard of the move, nothing more can come this way."""

    __slots__ = ("cid", "end", "hops", "peer_location", "to")

    def __init__(self, cid: int, end: int, to: int, peer_location: int, hops: int) -> None:
        self.cid = cid
        self.end = end
        self.to = to  # the node the end moved to
        self.peer_location = peer_location  # where its peer was, as far as we know
        self.hops = hops  # the end's move that left it
