"""A node: one trio run's end of the routes between processes (Mojo's `ports`, simplified).

A channel whose two ends live on different nodes gets an id `cid`; its ends are `(cid, 0)`
and `(cid, 1)`. Each end that lives here has a `RemoteEnd`: the `peer` its local core posts to,
which numbers what it sends (`seq`, from 1, per direction) and sends it as frames to the node
where the other end is. Frames for an end arrive in any order after a move, so the receiving
`RemoteEnd` keeps those that come early and delivers in `seq` order.

The rules (`docs/explanation/processes.md` states them for users):

- Frames between two nodes follow one path, in order (the nodes form a tree and forward in
  the order frames arrive), so a frame sent after another, by anyone who knew of the first,
  arrives after it. Only a move can make frames of one end take two paths.
- A port moved to another node takes its queue with it (its descriptor). If its peer is
  local, the peer just points to the new place. If its peer is remote, the old place keeps a
  *forward* that passes on what still comes there, and tells the peer (`MOVED`); the peer
  answers with the last `seq` it sent the old way (`MOVED_ACK`), and the forward goes.
- A close is announced with the last `seq` sent (`CLOSE`): the close event comes after every
  message, whatever paths they took.
- A node that is lost (`NODE_LOST`) takes with it every end it had: their peers get `close`
  after the messages that had arrived (`LOST` where only a forward knows the peer).

What a neighbour may send (`Node.receive` enforces it; the link drops a neighbour that breaks
it, and its nodes are lost):

- Frames of the shape their kind has (`frames.decode`), from a node behind the link (its
  `src` is reached through that link), never for a node behind that same link (one for a
  node we know is lost is dropped: we may have said so while it was on its way).
- ROUTES, NODE_LOST and BYE from the neighbour itself, for us: it may announce only nodes
  that are new or already behind it (not us, not a node reached another way, not a lost
  node), and report lost only nodes behind it (or, from our parent, nodes we do not know).
- A frame we fail to handle (a bug of ours) drops the link too, rather than the process,
  logged with its traceback (`frame_failed`).

What a frame for an end says cannot be blamed on the link it came by (forwards relay frames
under their own name), so a value no honest peer sends breaks that channel only: a `seq` out
of the window `EARLY_WINDOW` past the next due, or below 1; a CLOSE whose `last` is below what
arrived or past the window. Its local end closes as if the peer had died (one log line) and
the peer is told we closed. A repeated `seq` is dropped. A frame for an end that is not here
is dropped too (an end that closed while frames for it were on their way looks the same). A
descriptor that cannot be an end arriving here (the end is here already, sequence numbers out
of range, a close before the end of its queue) makes its message a messageerror, as a
payload that does not decode does.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Sequence
from typing import Any, Final, Protocol, final

import trio

from .._log import logger
from .._ports import MessagePort, _close_ports_in
from .._queue import CLOSE, LAGGED, MESSAGE_ERROR, PortCore, new_stamp
from . import codec, frames
from .frames import (
    ACK,
    LOST,
    MOVED,
    MOVED_ACK,
    NODE_LOST,
    ROUTES,
    USER,
    FrameError,
)
from .frames import (
    CLOSE as F_CLOSE,
)

__all__ = [
    "ACK_EVERY",
    "EARLY_WINDOW",
    "SEQ_LIMIT",
    "Link",
    "Node",
    "RemoteEnd",
    "local_node",
    "new_name",
    "set_local_node",
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


def new_name() -> int:
    """A fresh node or channel name: 63 random bits."""
    return secrets.randbits(63)


class Link(Protocol):
    """A connection to a neighbouring node: frames out, frames in (to `Node.receive`)."""

    def send(self, frame: bytes) -> None:
        """Send `frame` (never blocks: a link buffers what it cannot send yet)."""

    def close(self) -> None:
        """Close the link; the node learns of it through `Node.link_lost`."""


class Unadoptable(Exception):
    """A descriptor that cannot be an end arriving here."""


@final
class RemoteEnd:
    """A local core's peer when that peer lives on another node: the core posts to it, and
    it receives for the core. It has what the core looks at on a peer (`deliver`, `peer`,
    `queue`, `backlog`, the drain watchers, `thread`, `token`, `id`)."""

    __slots__ = (
        "ack_asked",
        "ack_due",
        "ack_upto",
        "acked",
        "cid",
        "closing",
        "cursor",
        "drained",
        "early",
        "end",
        "id",
        "local",
        "location",
        "node",
        "peer",
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
    ) -> None:
        self.node = node
        self.local = local
        self.peer: PortCore | None = local  # as a PortCore's peer.peer is the core itself
        self.cid = cid
        self.end = end  # the local core's end; the remote one is 1 - end
        self.location = location
        self.send_seq = send_seq  # the seq of the next message sent
        self.recv_seq = recv_seq  # the seq of the next message to deliver
        self.early: dict[int, tuple[Any, ...]] = {}  # came before their turn, by seq
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

    def __repr__(self) -> str:
        return f"<RemoteEnd {self.cid:x}/{self.end} at {self.location:x}>"

    # -- what the local core does to its peer ---------------------------------------------

    def deliver(self, data: Any, ports: Any) -> None:
        """The local core posts `data` (a clone, its ports already moved) or its close."""
        if data is CLOSE:
            self._closed_here()
            return
        if not ports:  # prepare(), in fewer steps
            self.send(codec.encode(data, [])[0], ports)
            return
        self.send(self.prepare(data, ports), ports)

    def prepare(self, data: Any, ports: Any) -> bytes:
        """The payload for `data` (raises `DataCloneError`; changes nothing)."""
        payload, _ = codec.encode(data, list(ports) if ports else [])
        return payload

    def send(self, payload: bytes, ports: Any) -> None:
        """Send a prepared message: its ports leave for the peer's node."""
        node = self.node
        seq = self.send_seq
        self.send_seq = seq + 1
        descriptors = [node.describe(port, self.location) for port in ports] if ports else []
        ask = seq - self.ack_asked >= ACK_EVERY
        if ask:
            self.ack_asked = seq
        node.send(self.location, USER, self.cid, 1 - self.end, seq, payload, descriptors, ask)

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
        self._drop_early()
        self.local.reads = None
        if self.drained is not None:
            self.taken()

    # -- what arrives for the local core --------------------------------------------------

    def on_user(self, seq: int, payload: bytes, descriptors: list[Any], ask: bool) -> None:
        if seq != self.recv_seq:
            due = self.recv_seq
            if due < seq <= due + EARLY_WINDOW and seq not in self.early:
                self.early[seq] = (payload, descriptors, ask)
                return
            self.node.close_described(descriptors)  # never delivered: its ports go
            if seq < 1 or seq > due + EARLY_WINDOW:
                self.broken(f"message {seq} when {due} is due")
            return  # a duplicate
        self._accept(payload, descriptors, ask)
        early = self.early
        while early and self.recv_seq in early:
            self._accept(*early.pop(self.recv_seq))
        if self.closing is not None:
            self._maybe_closed()

    def _accept(self, payload: bytes, descriptors: list[Any], ask: bool) -> None:
        self.recv_seq += 1
        if ask:
            self.asked(self.recv_seq - 1)
        data, ports = self.node.unpack(payload, descriptors)
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

    def on_moved(self, location: int, forward: int) -> None:
        """The peer moved to `location`; the forward at `forward` passes on what we sent it."""
        self.location = location
        self.node.send(forward, MOVED_ACK, self.cid, 1 - self.end, self.send_seq - 1)

    def on_ack(self, read: int) -> None:
        if read > self.acked:
            self.acked = min(read, self.send_seq - 1)
            if self.drained is not None:
                self.taken()

    def _drop_early(self) -> None:
        early, self.early = self.early, {}
        for _, descriptors, _ in early.values():
            self.node.close_described(descriptors)

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
    """Where an end that left this node went: what still comes here for it is passed on."""

    __slots__ = ("cid", "end", "peer_location", "to")

    def __init__(self, cid: int, end: int, to: int, peer_location: int) -> None:
        self.cid = cid
        self.end = end
        self.to = to  # the node the end moved to
        self.peer_location = peer_location  # where its peer was, as far as we know


@final
class Node:
    """The routes of one trio run: its ends of channels that cross to other nodes, the
    forwards of ends that left, and the links to neighbouring nodes."""

    __slots__ = (
        "_loop",
        "_pumping",
        "default",
        "ends",
        "forwards",
        "links",
        "lost_nodes",
        "name",
        "routes",
        "token",
        "up_page",
    )

    def __init__(self, name: int | None = None) -> None:
        self.name = new_name() if name is None else name
        self.token = trio.lowlevel.current_trio_token()
        self.ends: dict[tuple[int, int], RemoteEnd] = {}
        self.forwards: dict[tuple[int, int], Forward] = {}
        self.links: dict[int, Link] = {}  # neighbour node -> its link
        self.routes: dict[int, int] = {}  # node -> the neighbour it is reached through
        self.default: int | None = None  # the neighbour for every other node (the parent)
        self.lost_nodes: set[int] = set()
        self._loop: deque[tuple[Sequence[Any], int]] = deque()  # (fields, neighbour): to handle
        self._pumping = False
        # The read cursors shared with the parent node (8-byte counters), for the ends whose
        # messages the parent keeps until they are read (see HomeEnd); None if none.
        self.up_page: memoryview | None = None

    def __repr__(self) -> str:
        return f"<Node {self.name:x} ends={len(self.ends)} forwards={len(self.forwards)}>"

    # -- links and routes -----------------------------------------------------------------

    def add_link(self, neighbour: int, link: Link, *, parent: bool = False) -> None:
        """`link` reaches `neighbour`; a parent's link is the route to every unknown node."""
        self.links[neighbour] = link
        self.routes[neighbour] = neighbour
        if parent:
            self.default = neighbour
        names = [self.name, *(n for n, via in self.routes.items() if via != neighbour)]
        link.send(frames.encode(neighbour, self.name, ROUTES, names))

    def link_lost(self, neighbour: int) -> None:
        """The link to `neighbour` is gone: so is every node reached through it."""
        if self.links.pop(neighbour, None) is None:
            return
        lost = {n for n, via in self.routes.items() if via == neighbour}
        lost.add(neighbour)
        if self.default == neighbour:
            self.default = None
        self._lose(lost, came_from=neighbour)

    def _lose(self, lost: set[int], came_from: int | None) -> None:
        lost -= self.lost_nodes
        if not lost:
            return
        self.lost_nodes |= lost
        for name in lost:
            self.routes.pop(name, None)
        for neighbour, link in list(self.links.items()):
            if neighbour != came_from:
                link.send(frames.encode(neighbour, self.name, NODE_LOST, sorted(lost)))
        for remote in list(self.ends.values()):
            if remote.location in lost:
                remote.on_lost()
        for key, forward in list(self.forwards.items()):
            if forward.to in lost or forward.peer_location in lost:
                del self.forwards[key]
                if forward.to not in lost:
                    self.send(forward.to, LOST, forward.cid, forward.end)
                if forward.peer_location not in lost:
                    self.send(forward.peer_location, LOST, forward.cid, 1 - forward.end)

    def send(self, dst: int, kind: int, *fields: object) -> None:
        """Send a frame to node `dst` by its route (to ourselves: handled after this one)."""
        if dst == self.name:
            self._loop.append(([dst, dst, kind, *fields], dst))
            if not self._pumping:
                self._pump()
            return
        self._route(dst, frames.encode(dst, self.name, kind, *fields))

    def _route(self, dst: int, frame: bytes) -> None:
        via = self.routes.get(dst, self.default)
        link = None if via is None or dst in self.lost_nodes else self.links.get(via)
        if link is None:
            self._undeliverable(frames.decode(frame))
            return
        link.send(frame)

    def _undeliverable(self, fields: Sequence[Any]) -> None:
        """A frame with nowhere to go: the ports it carries must still close."""
        if fields[2] == USER:
            self.close_described(fields[7])

    # -- what arrives ---------------------------------------------------------------------

    def receive(self, frame: bytes, neighbour: int) -> None:
        """A frame from the link to `neighbour` (the module's docstring says what it may send).

        Raises:
            FrameError: `frame` breaks the protocol (the link must be dropped).
        """
        try:
            fields = frames.decode(frame)
            dst, src = fields[0], fields[1]
            if self.routes.get(src, self.default) != neighbour or src == self.name:
                raise FrameError(f"a frame from node {src:x}, which is not behind the link")
            if dst != self.name:
                self._pass_on(fields, frame, neighbour)
                return
            if self._pumping:  # a link delivering while we handle a frame: after it, in order
                self._loop.append((fields, neighbour))
                return
            self._pumping = True
            try:
                self._handle(fields, neighbour)
                if self._loop:
                    self._drain_loop()
            finally:
                self._pumping = False
        except FrameError:
            raise
        except Exception as exc:  # a bug of ours: the link goes, not the process
            logger(node=self.name).error("frame_failed", neighbour=neighbour, exc_info=True)
            raise FrameError(f"handling a frame failed: {exc!r}") from exc

    def _pass_on(self, fields: Sequence[Any], frame: bytes, neighbour: int) -> None:
        """A frame for another node, from `neighbour`: on to the next hop, never back."""
        dst = fields[0]
        if fields[2] >= ROUTES:
            raise FrameError(f"a frame of kind {fields[2]} to pass on to node {dst:x}")
        if dst in self.lost_nodes:  # (we may have said so while it was on its way)
            self._undeliverable(fields)
            return
        via = self.routes.get(dst, self.default)
        if via == neighbour:
            raise FrameError(f"a frame for node {dst:x} from the link that leads to it")
        link = None if via is None else self.links.get(via)
        if link is None:
            self._undeliverable(fields)
        else:
            link.send(frame)

    def _pump(self) -> None:
        self._pumping = True
        try:
            self._drain_loop()
        finally:
            self._pumping = False

    def _drain_loop(self) -> None:
        loop = self._loop
        while loop:
            self._handle(*loop.popleft())

    def _handle(self, fields: Sequence[Any], neighbour: int) -> None:
        kind = fields[2]
        if kind >= ROUTES:  # ROUTES, NODE_LOST, BYE: from the neighbour itself
            if fields[1] != neighbour:
                raise FrameError(f"a frame of kind {kind} from beyond the neighbour")
            if kind == ROUTES:
                self._routes(fields[3], neighbour)
            elif kind == NODE_LOST:
                self._node_lost(fields[3], neighbour)
            return
        key = (fields[3], fields[4])
        remote = self.ends.get(key)
        if remote is None:
            forward = self.forwards.get(key)
            if forward is not None:
                self._forward(forward, fields)
            elif kind == USER:
                self.close_described(fields[7])  # an end that is gone: its ports go
            elif kind == MOVED:  # a gone end sends nothing more: the forward may go
                self.send(fields[6], MOVED_ACK, key[0], 1 - key[1], 0)
            return
        if kind == USER:
            remote.on_user(fields[5], fields[6], fields[7], fields[8])
        elif kind == F_CLOSE:
            remote.on_close(fields[5])
        elif kind == MOVED:
            remote.on_moved(fields[5], fields[6])
        elif kind == ACK:
            remote.on_ack(fields[5])
        elif kind == LOST:
            remote.on_lost()
        # MOVED_ACK: for a forward that is gone already; REHOMED: not acted on yet

    def _routes(self, names: list[int], neighbour: int) -> None:
        """`neighbour` says `names` are reached through it: nodes new to us, or already
        behind it. We pass the news on to our parent."""
        routes = self.routes
        for name in names:
            if (
                name == self.name
                or name in self.lost_nodes
                or routes.get(name, neighbour) != neighbour
            ):
                raise FrameError(f"node {neighbour:x} claims node {name:x}, not behind it")
        for name in names:
            routes[name] = neighbour
        if self.default is not None and neighbour != self.default:
            parent = self.links.get(self.default)
            if parent is not None:
                parent.send(frames.encode(self.default, self.name, ROUTES, names))

    def _node_lost(self, names: list[int], neighbour: int) -> None:
        """`neighbour` says `names` are gone: nodes behind it (from our parent: any node that
        is not behind another link)."""
        lost = set()
        for name in names:
            if name == self.name or name == neighbour:
                raise FrameError(f"node {neighbour:x} says node {name:x} is lost")
            if name in self.lost_nodes:
                continue
            via = self.routes.get(name)
            if via != neighbour and (via is not None or neighbour != self.default):
                raise FrameError(f"node {neighbour:x} says node {name:x} is lost, not behind it")
            lost.add(name)
        self._lose(lost, came_from=neighbour)

    def _forward(self, forward: Forward, fields: Sequence[Any]) -> None:
        kind = fields[2]
        if kind == MOVED_ACK:
            del self.forwards[forward.cid, forward.end]
            return
        if kind == MOVED:
            forward.peer_location = fields[5]
        self.send(forward.to, kind, *fields[3:])
        if kind in (F_CLOSE, LOST):  # the peer's last word: nothing comes this way after it
            del self.forwards[forward.cid, forward.end]

    # -- ports in frames: descriptors -----------------------------------------------------

    def describe(self, port: MessagePort, dst: int) -> list[Any]:
        """`port` (a shell made by the transfer commit) leaves for node `dst`: its
        descriptor. Its queue goes with it; its peer learns where it went."""
        core = port._core
        assert core is not None
        port._core = None
        port._state = "transferred"
        queued = self._queued(core, dst)
        peer = core.peer
        core.peer = None
        core.enabled = False
        core.handle = None
        if core.drained is not None:
            core.taken()
        if peer is None:  # disentangled: the close goes with the queue
            return [0, 0, None, 1, 1, queued, [], None]
        if isinstance(peer, PortCore):  # the peer is here: it now points over there
            cid = new_name()
            RemoteEnd(self, peer, cid, 0, dst)
            peer.peer = self.ends[cid, 0]
            return [cid, 1, self.name, 1, 1, queued, [], None]
        assert isinstance(peer, RemoteEnd)
        remote = peer
        key = (remote.cid, remote.end)
        self.ends.pop(key, None)
        core.reads = None
        early = [[seq, *frame] for seq, frame in sorted(remote.early.items())]
        descriptor = [
            remote.cid,
            remote.end,
            remote.location,
            remote.send_seq,
            remote.recv_seq,
            queued,
            early,
            remote.closing,
            None,  # no cursor: only a port its parent keeps has one
            remote.ack_upto,  # asks not answered yet: the new place answers them
        ]
        self.forwards[key] = Forward(remote.cid, remote.end, dst, remote.location)
        self.send(remote.location, MOVED, remote.cid, 1 - remote.end, dst, self.name)
        return descriptor

    def _queued(self, core: PortCore, dst: int) -> list[Any]:
        """What waits in `core`'s queue, for its descriptor: `[kind, payload, descriptors]`."""
        items: list[Any] = []
        queue = core.queue
        while queue:
            data, ports, _ = queue.popleft()
            if data is CLOSE:
                items.append([2, b"", []])
            elif data is MESSAGE_ERROR:
                items.append([1, b"", []])
            elif data is LAGGED:
                continue  # a notice for this port's reader: it does not travel
            else:
                try:
                    payload, _ = codec.encode(data, list(ports) if ports else [])
                except Exception:  # what arrived once can go again; if not, it is an error
                    _close_ports_in([(data, ports, 0)])
                    items.append([1, b"", []])
                    continue
                descriptors = [self.describe(p, dst) for p in ports] if ports else []
                items.append([0, payload, descriptors])
        return items

    def adopt(self, descriptor: list[Any]) -> MessagePort:
        """The port a descriptor (of the shape `frames.decode` checks) stands for, made here,
        its queue filled, not started.

        Raises:
            Unadoptable: the descriptor cannot be an end arriving here; nothing was made.
        """
        cid, end, location, send_seq, recv_seq, queued, early, closing = descriptor[:8]
        cursor = descriptor[8] if len(descriptor) >= 9 else None
        asked = descriptor[9] if len(descriptor) == 10 else 0
        for i, item in enumerate(queued):
            if item[0] == 2 and (location is not None or i != len(queued) - 1):
                raise Unadoptable("a close before the end of a queue")
        remote = None
        page = self.up_page
        if location is not None:
            _check_adoptable(self, cid, end, send_seq, recv_seq, early, closing)
            if not 0 <= asked < SEQ_LIMIT:
                raise Unadoptable(f"asked to acknowledge {asked}: out of range")
            if cursor is not None and page is not None and location == self.default:
                if not 0 <= cursor < len(page):
                    raise Unadoptable(f"a read cursor {cursor} outside the cursor page")
            else:
                cursor = None  # only a port its parent keeps has one
        core = PortCore(self.token)
        port: MessagePort = MessagePort._create(core)
        if location is not None:  # first, so that the queue's ports cannot claim its place
            remote = RemoteEnd(self, core, cid, end, location, send_seq, recv_seq)
            core.peer = remote
            for seq, payload, descriptors, ask in early:
                remote.early[seq] = (payload, descriptors, ask)
            remote.closing = closing
            # Back where it once left: the forward it left here is stale (frames for it find
            # it first), and would pass them back to where it was once it closes, or to this
            # very node, round and round; and it would report the end lost with that place.
            self.forwards.pop((cid, end), None)
        queue = core.queue
        for kind, payload, descriptors in queued:
            if kind == 2:
                queue.append((CLOSE, None, new_stamp()))
            elif kind == 1:
                queue.append((MESSAGE_ERROR, (), new_stamp()))
            else:
                data, ports = self.unpack(payload, descriptors)
                queue.append((data, ports, new_stamp()))
        if remote is None:
            if not queue or queue[-1][0] is not CLOSE:
                queue.append((CLOSE, None, new_stamp()))
            return port
        if asked:
            remote.asked(min(asked, remote.read + ACK_EVERY))
            remote.ack_upto = asked
        remote.cursor = cursor
        if closing is not None:
            remote._maybe_closed()
        return port

    def unpack(self, payload: bytes, descriptors: list[Any]) -> tuple[Any, tuple[MessagePort, ...]]:
        """A message's data and ports; a payload that does not decode, or a port that cannot
        be adopted, makes it a messageerror (and its ports close)."""
        if not descriptors:  # the common case, in fewer steps
            try:
                return codec.decode(payload, ()), ()
            except codec.DecodeError:
                pass  # the way below says so
        ports: list[MessagePort] = []
        try:
            if descriptors:
                for descriptor in descriptors:
                    ports.append(self.adopt(descriptor))
            adopted = tuple(ports)
            return codec.decode(payload, adopted), adopted
        except (codec.DecodeError, Unadoptable) as exc:
            logger().debug("message_undecodable", reason=str(exc))
            for port in ports:
                port.close()
            if len(ports) < len(descriptors):  # the one refused is dropped, the rest close
                self.close_described(descriptors[len(ports) + 1 :])
            return MESSAGE_ERROR, ()

    def close_described(self, descriptors: list[Any]) -> None:
        """Ports that will never be delivered (their message was dropped): they close, so
        their peers hear of it (those that cannot be adopted here are dropped)."""
        for descriptor in descriptors:
            try:
                port = self.adopt(descriptor)
            except Unadoptable:
                continue
            port.close()


def _check_adoptable(
    node: Node,
    cid: int,
    end: int,
    send_seq: int,
    recv_seq: int,
    early: list[list[Any]],
    closing: int | None,
) -> None:
    if (cid, end) in node.ends:
        raise Unadoptable(f"the end {cid:x}/{end} is here already")
    if not (0 < send_seq < SEQ_LIMIT and 0 < recv_seq < SEQ_LIMIT):
        raise Unadoptable(f"sequence numbers {send_seq}, {recv_seq} out of range")
    last = recv_seq + EARLY_WINDOW
    if len({entry[0] for entry in early}) != len(early) or not all(
        recv_seq < entry[0] <= last for entry in early
    ):
        raise Unadoptable("early messages that are not between the next due and the window")
    if closing is not None and not recv_seq - 1 <= closing < last:
        raise Unadoptable(f"closed after message {closing} when {recv_seq} is due")


_LOCAL: Final = trio.lowlevel.RunVar["Node"]("actors_node")


def local_node() -> Node:
    """This trio run's node, made the first time a port of the run crosses to another node."""
    try:
        return _LOCAL.get()
    except LookupError:
        node = Node()
        _LOCAL.set(node)
        return node


def set_local_node(node: Node) -> None:
    """Make `node` this run's node (a child process's, named by its parent)."""
    _LOCAL.set(node)
