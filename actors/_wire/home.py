"""Ports kept at home: a port whose reader lives in a neighbouring node (a child process)
while its queue stays here, each message kept until the reader has read it.

The other ends of channels that cross nodes move (`Node.describe`): their queue goes with
them, and if the node they went to dies, so does what it had not read. A process actor's
slot ports must outlive its process: what its incarnation had received but not read goes to
the next one. So a slot port never leaves the parent: its core stays here, a `HomeEnd` is
its reader's peer across the link, and sends it each queued item *without taking it out of
the queue*. The reader writes how many messages it has read into a page of shared memory
(`RemoteEnd.cursor`) before its code sees each one, so after a crash, a kill or a segfault
the parent knows exactly what was read: those items go, the rest wait for the next
incarnation, none lost and none twice. Read acknowledgements (`ACK`) keep the queue short
while the reader lives.

The ports inside a message sent to the reader are kept here the same way (a relay
`HomeEnd`, *pending* until its message is read), so a message that goes back to the queue
still holds live ports. Once read, a relay is *owned* by the incarnation: when the
incarnation's process is gone, its port closes, as every port an incarnation owned does.
A reader that moves its port on to a third node turns its `HomeEnd` into a plain relay
(*free*): it no longer keeps messages, and the port is no longer the incarnation's.

The rules (`docs/explanation/processes.md` states them for users): a message is *read* when
it leaves the reader's queue for a `receive()` or a handler; a process that ends, however it
ends, loses none of the messages its slot ports had not read, and sees none twice.
"""

from __future__ import annotations

import mmap
import os
from typing import Any, Final, final

from .._log import logger
from .._ports import MessagePort, _close_ports_in
from .._queue import CLOSE, LAGGED, MESSAGE_ERROR, PortCore
from . import codec
from .ends import ACK_EVERY, EARLY_WINDOW, InBySeq, next_ack
from .fds import MAX_FDS, Fds
from .frames import ACK, MOVED_ACK, USER
from .frames import CLOSE as F_CLOSE
from .node import Node, new_name

__all__ = ["CursorPage", "HomeEnd"]

PAGE_SIZE: Final = 64 * 1024
"""Bytes of shared memory per child process for read cursors: 8192 homed ports at a time
(past that, a port is homed without a cursor and a kill may show a message twice)."""

SLOT: Final = "slot"  # a slot port: it stays with the slot when the reader's process ends
PENDING: Final = "pending"  # a port in a message the reader has not read yet: it stays too
OWNED: Final = "owned"  # read by the reader's incarnation: it closes when that process ends
FREE: Final = "free"  # the reader moved it on: a plain relay, no messages kept


@final
class CursorPage:
    """The shared page of read cursors between this node and one child: slots of 8 bytes,
    each the count of messages the child has read from one homed port."""

    __slots__ = ("_free", "_map", "fd", "view")

    def __init__(self) -> None:
        self.fd = os.memfd_create("actors-cursors", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, PAGE_SIZE)
        self._map = mmap.mmap(self.fd, PAGE_SIZE)
        self.view: memoryview | None = memoryview(self._map).cast("Q")
        self._free = list(range(PAGE_SIZE // 8 - 1, -1, -1))

    def allocate(self) -> int | None:
        """A zeroed slot, or `None` when every slot is in use."""
        if not self._free or self.view is None:
            return None
        slot = self._free.pop()
        self.view[slot] = 0
        return slot

    def release(self, slot: int) -> None:
        self._free.append(slot)

    def read(self, slot: int) -> int:
        return 0 if self.view is None else self.view[slot]

    def close(self) -> None:
        """Unmap it and close the fd (the child's mapping is its own)."""
        if self.view is not None:
            self.view.release()
            self.view = None
            self._map.close()
            os.close(self.fd)


def map_cursor_page(fd: int) -> memoryview:
    """The child's view of the page its parent made (`fd` inherited)."""
    mapping = mmap.mmap(fd, PAGE_SIZE)
    os.close(fd)
    return memoryview(mapping).cast("Q")


@final
class HomeEnd(InBySeq):
    """The peer, across a link, of a reader in another node, for a core that stays here.

    It stands where a `RemoteEnd` stands in `Node.ends` (the node hands it the frames of its
    channel) and is the core's `sink`: every item queued at the core is sent to the reader
    and stays queued until the reader has read it.
    """

    __slots__ = (
        "ack_asked",
        "ack_due",
        "ack_upto",
        "behind",
        "carried",
        "carrier",
        "cid",
        "closing",
        "core",
        "cursor",
        "early",
        "end",
        "id",
        "location",
        "node",
        "out_read",
        "page",
        "peer_hops",
        "port",
        "read",
        "recv_seq",
        "send_seq",
        "sent",
        "state",
    )

    def __init__(
        self, node: Node, port: MessagePort, location: int, page: CursorPage, state: str
    ) -> None:
        core = port._core
        assert core is not None
        assert core.sink is None
        self.node = node
        self.port = port
        self.core = core
        self.location = location
        self.page = page
        self.state = state
        self.cid = new_name()
        self.end = 0
        self.id = f"{core.id}@{location:x}"
        self.send_seq = 1  # the seq of the next item sent to the reader
        self.recv_seq = 1  # the seq of the next message from the reader
        self.early: dict[int, tuple[Any, ...]] = {}
        self.closing: int | None = None
        self.read = 0  # items the reader has read (and that left the queue)
        self.sent = 0  # items at the head of the queue that went to the reader
        self.ack_asked = 0
        self.out_read = 0  # the reader's messages read at the core's peer
        self.ack_due = 0  # the first of the reader's seqs it asked to hear of, not yet heard
        self.ack_upto = 0  # the last it asked to hear of
        self.cursor = page.allocate()
        self.carried: dict[int, list[HomeEnd]] = {}  # seq -> relays of that message's ports
        self.carrier: tuple[HomeEnd, int] | None = None  # for a PENDING relay
        self.peer_hops = 0  # the reader's move number, as of the news of where it is
        self.behind = None  # (as a RemoteEnd's: a home never moves, so it leaves no forward)
        node.ends[self.cid, 0] = self  # type: ignore[assignment]
        core.sink = self
        core.enabled = False

    def descriptor(self) -> list[Any]:
        """The reader's end, for a frame: adopted there, it writes its reads at `cursor`."""
        return [self.cid, 1, self.node.name, 1, 1, [], [], None, self.cursor]

    def __repr__(self) -> str:
        return f"<HomeEnd {self.cid:x} {self.state} for {self.core.id} at {self.location:x}>"

    # -- the core's items, to the reader --------------------------------------------------

    def check(self, data: Any, ports: tuple[Any, ...]) -> None:
        """Whether the wire can carry `data` (whose transferred ports are `ports`), for a
        sender that has not detached anything yet: it is queued here and encoded later.

        Raises:
            DataCloneError: it cannot (nothing changed).
        """
        codec.encode(data, list(ports), [], MAX_FDS)  # buffers in memfds are not copied

    def pushed(self) -> None:
        """An item was queued at the core: send it (and any before it not yet sent)."""
        queue = self.core.queue
        sent = self.sent
        if sent == len(queue) - 1 and self.state != FREE:  # the common case: one new message
            data, ports, _ = queue[-1]
            if data is not CLOSE and data is not LAGGED and not (sent and queue[-2][0] is CLOSE):
                self.sent = sent + 1
                payload = None if ports else codec.plain(data)
                if payload is None:
                    self._send(data, ports, sent)
                    return
                seq = self.send_seq  # plain data: no ports, no buffers, nothing to check
                self.send_seq = seq + 1
                ask = seq - self.ack_asked >= ACK_EVERY
                if ask:
                    self.ack_asked = seq
                self.node.send_user(self.location, self.cid, 1, seq, payload, ask)
                return
        while self.sent < len(queue):
            if self.closing_sent():
                return
            data, ports, _ = queue[self.sent]
            self.sent += 1
            if data is CLOSE:
                self.node.send(self.location, F_CLOSE, self.cid, 1, self.send_seq - 1)
                if self.state in (OWNED, FREE):  # nothing more to keep or to pass on: the
                    self._detach()  # reader's last words, if any, find the port closed
                return
            if data is LAGGED:  # never queued while a sink reads (drop_oldest refuses)
                continue
            self._send(data, ports, self.sent - 1)
        if self.state == FREE:
            self._forget(self.send_seq - 1)

    def closing_sent(self) -> bool:
        queue = self.core.queue
        return self.sent > 0 and queue[self.sent - 1][0] is CLOSE

    def _send(self, data: Any, ports: Any, index: int) -> None:
        """Send the item at `index` of the queue (`data` and `ports`) to the reader."""
        node = self.node
        seq = self.send_seq
        self.send_seq = seq + 1
        payload = b""  # an empty payload is a messageerror over there
        buffers: list[int] = []
        fds: Fds | None = None
        descriptors: list[Any] = []
        relays: list[HomeEnd] = []
        if data is not MESSAGE_ERROR:
            try:  # its buffers in memfds go as fds, and stay in the queue too
                payload, buffers, fds = node.pack(data, ports, None, share=True)
            except Exception as exc:  # cloned here, but the wire carries less: say so
                logger(port=self.core.id).warning("message_not_sendable", reason=repr(exc))
                payload = b""  # a messageerror over there, and here for a next incarnation;
                queue = self.core.queue  # its ports will never arrive: they close now
                queue[index] = (MESSAGE_ERROR, (), queue[index][2])
                _close_ports_in([(data, ports, 0)])
            else:
                if ports:
                    relays = [self._relay(port, seq) for port in ports]
                    self.carried[seq] = relays
                    descriptors = [relay.descriptor() for relay in relays]
        # A message with buffers in memfds asks to hear as soon as it is read: until then
        # this queue maps their memory (large, by definition), even after the reader let go.
        # So does one with ports: until then their relays stay here, even once closed.
        ask = bool(buffers) or bool(relays) or seq - self.ack_asked >= ACK_EVERY
        if ask:
            self.ack_asked = seq
        if not buffers and not relays:  # the common case: it may go in a batch
            node.send_user(self.location, self.cid, 1, seq, payload, ask)
            return
        fields: tuple[object, ...] = (self.cid, 1, seq, payload, descriptors, ask)
        if buffers:
            fields = (*fields, buffers)
        node.send(self.location, USER, *fields, fds=fds)
        for relay in relays:  # after the frame that makes their ends over there
            relay.pushed()

    def _relay(self, port: MessagePort, seq: int) -> HomeEnd:
        relay = HomeEnd(self.node, port, self.location, self.page, PENDING)
        relay.carrier = (self, seq)
        return relay

    # -- what the reader has read ---------------------------------------------------------

    def sync(self) -> None:
        """Let the items the reader has read leave the queue (its cursor says how many)."""
        if self.cursor is not None:
            self._forget(self.page.read(self.cursor))

    def _forget(self, read: int) -> None:
        read = min(read, self.send_seq - 1)
        if read <= self.read:
            return
        core = self.core
        queue = core.queue
        gone = read - self.read
        first = self.read + 1
        self.read = read
        if self.carried:
            for seq in range(first, read + 1):
                relays = self.carried.pop(seq, None)
                for relay in relays or ():
                    if relay.state == PENDING:
                        relay.state = OWNED
                        relay.carrier = None
                        if relay.sent and relay.closing_sent():
                            relay._detach()
        reads = core.reads  # a RemoteEnd acknowledging to a sender in another node
        count = min(gone, self.sent, len(queue))
        if count and queue[count - 1][0] is CLOSE:  # (a close is last, and stays)
            count -= 1
        popleft = queue.popleft
        for _ in range(count):
            popleft()
        self.sent -= count
        if reads is not None:
            for _ in range(count):
                reads.took()
        if core.drained is not None:
            core.taken()

    # -- frames from the reader (Node calls these as on a RemoteEnd) -----------------------

    def on_user(
        self,
        seq: int,
        payload: bytes,
        descriptors: list[Any],
        ask: bool,
        buffers: list[int],
        fds: Fds | None,
    ) -> None:
        """A message from the reader; `fds` (its frame's) are taken, or closed by the
        caller."""
        if seq != self.recv_seq:
            self._out_of_turn(seq, payload, descriptors, ask, buffers, fds)
            return
        if ask:
            self._asked(seq)
        self._accept(payload, descriptors, buffers, fds)
        while self.early and self.recv_seq in self.early:
            payload, descriptors, ask, buffers, fds = self.early.pop(self.recv_seq)
            if ask:
                self._asked(self.recv_seq)
            self._accept(payload, descriptors, buffers, fds)
        if self.closing is not None:
            self._maybe_closed()

    def _accept(
        self, payload: bytes, descriptors: list[Any], buffers: list[int], fds: Fds | None
    ) -> None:
        """The reader posted on its port: out through the core, to the core's peer."""
        self.recv_seq += 1
        data, ports = self.node.unpack(payload, descriptors, buffers, fds)
        if fds:
            fds.close()  # more than its buffers and ports took: a peer's lie
        peer = self.core.peer
        if peer is None:  # the other end is gone: what the message carried closes
            _close_ports_in([(data, ports, 0)])
            self.took()
            return
        if isinstance(peer, PortCore) and peer.reads in (None, self):
            peer.reads = self  # read here: acknowledged when the peer reads it (flow control)
        else:  # the peer is elsewhere: acknowledged as it leaves (its own window applies)
            self.took()
        peer.deliver(data, ports)

    def took(self) -> None:
        """The core's peer read one of the reader's messages (or it went on its way)."""
        self.out_read += 1
        due = self.ack_due
        if due and self.out_read >= due:
            self.ack_due = next_ack(self.out_read, self.ack_upto)
            self.node.send(self.location, ACK, self.cid, 1, self.out_read)

    def _asked(self, seq: int) -> None:
        if not self.ack_due:
            self.ack_due = seq
        self.ack_upto = max(self.ack_upto, seq)

    def on_close(self, last: int) -> None:
        arrived = self.recv_seq - 1
        if not arrived <= last <= arrived + EARLY_WINDOW:
            self.broken(f"closed after message {last} when {arrived} arrived")
            return
        self.closing = last
        self._maybe_closed()

    def broken(self, reason: str) -> None:
        """The reader sent what no honest reader sends (node.py's rules): its channel ends,
        as if its process had died (a slot port stays with the slot, what it had not read
        still queued), and the reader is told its peer closed."""
        logger(node=self.node.name).warning(
            "channel_broken", channel=f"{self.cid:x}/0", reason=reason
        )
        self.node.send(self.location, F_CLOSE, self.cid, 1, self.send_seq - 1)
        self.on_lost()

    def _maybe_closed(self) -> None:
        if self.closing is not None and self.recv_seq > self.closing:
            self._detach()
            self._close()  # the reader closed its port: it is closed for good

    def on_ack(self, read: int) -> None:
        if self.state != FREE:
            self._forget(max(read, self.page.read(self.cursor) if self.cursor is not None else 0))

    def on_moved(self, location: int, forward: int, hops: int) -> None:
        """The reader moved its port on: this becomes a plain relay to where it went (news
        of an older move, passed on late, changes nothing but is answered)."""
        if hops > self.peer_hops:
            self.peer_hops = hops
            self.location = location
        self.node.send(self.location, MOVED_ACK, self.cid, 1, self.send_seq - 1, hops, forward)
        if self.state != FREE:
            self.state = FREE
            self.carrier = None
            self._release_cursor()
            self._forget(self.send_seq - 1)  # what it had not read went with it
            self.carried.clear()

    def on_moved_ack(self, last: int, hops: int, forward: int) -> None:
        """A home never moves: no forward of its own to release."""

    def on_lost(self) -> None:
        """The reader's node is gone (its process ended, however it ended)."""
        carrier = self.carrier
        if carrier is not None:  # the message that carries this port may have been read
            carrier[0].sync()
        self.sync()
        self._detach()
        if self.state in (OWNED, FREE):  # the incarnation's, or its reader's: it closes
            self._close()

    def _close(self) -> None:
        port = self.port
        if port._core is self.core:
            port.close()
        else:
            _close_ports_in(self.core.abandon())

    def give_up_slot(self) -> MessagePort:
        """The reader moved this slot port on, so it left the slot: the slot's object is
        detached (as a transferred port is), and this relay goes on with an object of its
        own. Returns the detached object's replacement for the slot."""
        old = self.port
        self.port = MessagePort._create(self.core)
        old._core = None
        old._state = "transferred"
        return old

    def _detach(self) -> None:
        """Stop reading for the reader: the core's queue holds exactly what it has not read."""
        self.node.ends.pop((self.cid, 0), None)
        core = self.core
        if core.sink is self:
            core.sink = None
        peer = core.peer
        if isinstance(peer, PortCore) and peer.reads is self:
            peer.reads = None
        self._release_cursor()
        early, self.early = self.early, {}
        for _, descriptors, _, buffers, fds in early.values():
            self.node.drop(descriptors, buffers, fds)
        self.sent = 0

    def _release_cursor(self) -> None:
        if self.cursor is not None:
            self.page.release(self.cursor)
            self.cursor = None


def home_ports(
    node: Node, ports: list[MessagePort], location: int, page: CursorPage
) -> list[HomeEnd]:
    """Keep `ports` (a process actor's slot ports) here, their reader at `location`."""
    return [HomeEnd(node, port, location, page, SLOT) for port in ports]
