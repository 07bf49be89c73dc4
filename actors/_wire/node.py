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
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable
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

__all__ = ["ACK_EVERY", "Link", "Node", "RemoteEnd", "local_node", "new_name", "set_local_node"]

ACK_EVERY: Final = 128
"""A sender asks for a read acknowledgement every this many messages (flow control)."""


def new_name() -> int:
    """A fresh node or channel name: 63 random bits."""
    return secrets.randbits(63)


class Link(Protocol):
    """A connection to a neighbouring node: frames out, frames in (to `Node.receive`)."""

    def send(self, frame: bytes) -> None:
        """Send `frame` (never blocks: a link buffers what it cannot send yet)."""

    def close(self) -> None:
        """Close the link; the node learns of it through `Node.link_lost`."""


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
            if seq > self.recv_seq:
                self.early[seq] = (payload, descriptors, ask)
            else:
                self.node.close_described(descriptors)  # a duplicate: its ports go
            return
        self._accept(payload, descriptors, ask)
        early = self.early
        while early and self.recv_seq in early:
            self._accept(*early.pop(self.recv_seq))
        self._maybe_closed()

    def _accept(self, payload: bytes, descriptors: list[Any], ask: bool) -> None:
        self.recv_seq += 1
        if ask:
            self.asked(self.recv_seq - 1)
        data, ports = self.node.unpack(payload, descriptors)
        self.local.deliver(data, ports)

    def on_close(self, last: int) -> None:
        self.closing = last
        self._maybe_closed()

    def _maybe_closed(self) -> None:
        if self.closing is not None and self.recv_seq > self.closing:
            self.node.ends.pop((self.cid, self.end), None)
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
        self._loop: deque[bytes] = deque()  # frames to ourselves, handled in order
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
        frame = frames.encode(dst, self.name, kind, *fields)
        if dst == self.name:
            self._loop.append(frame)
            if not self._pumping:
                self._pump()
            return
        self._route(dst, frame)

    def _route(self, dst: int, frame: bytes) -> None:
        via = self.routes.get(dst, self.default)
        link = None if via is None or dst in self.lost_nodes else self.links.get(via)
        if link is None:
            self._undeliverable(frame)
            return
        link.send(frame)

    def _undeliverable(self, frame: bytes) -> None:
        """A frame with nowhere to go: the ports it carries must still close."""
        try:
            fields = frames.decode(frame)
        except FrameError:
            return
        if fields[2] == USER and len(fields) >= 8:
            self.close_described(fields[7])

    # -- what arrives ---------------------------------------------------------------------

    def receive(self, frame: bytes, neighbour: int) -> None:
        """A frame from the link to `neighbour`.

        Raises:
            FrameError: `frame` breaks the protocol (the link must be dropped).
        """
        fields = frames.decode(frame)
        dst = fields[0]
        if dst != self.name:
            assert type(dst) is int  # frames.decode checked it
            self._route(dst, frame)  # passing through
            return
        if self._pumping:  # a link delivering while we handle a frame: after it, in order
            self._loop.append(frame)
            return
        self._pumping = True
        try:
            self._handle(fields, neighbour)
            self._drain_loop()
        finally:
            self._pumping = False

    def _pump(self) -> None:
        self._pumping = True
        try:
            self._drain_loop()
        finally:
            self._pumping = False

    def _drain_loop(self) -> None:
        loop = self._loop
        while loop:
            fields = frames.decode(loop.popleft())
            self._handle(fields, self.name)

    def _handle(self, fields: list[Any], neighbour: int) -> None:
        kind = fields[2]
        if kind == ROUTES:
            names = _ints(fields, 3)
            for name in names:
                if name != self.name:
                    self.routes[name] = neighbour
                    self.lost_nodes.discard(name)
            if self.default is not None and neighbour != self.default:
                parent = self.links.get(self.default)
                if parent is not None:
                    parent.send(frames.encode(self.default, self.name, ROUTES, names))
            return
        if kind == NODE_LOST:
            self._lose(set(_ints(fields, 3)), came_from=neighbour)
            return
        if kind == frames.BYE:
            return
        if len(fields) < 5 or type(fields[3]) is not int or fields[4] not in (0, 1):
            raise FrameError("a frame for an end without (cid, end)")
        key = (fields[3], fields[4])
        remote = self.ends.get(key)
        if remote is None:
            forward = self.forwards.get(key)
            if forward is not None:
                self._forward(forward, fields)
            elif kind == USER:
                self.close_described(_list(fields, 7))  # an end that is gone: its ports go
            elif kind == MOVED:  # a gone end sends nothing more: the forward may go
                self.send(_int(fields, 6), MOVED_ACK, key[0], 1 - key[1], 0)
            return
        if kind == USER:
            seq, payload, descriptors = _int(fields, 5), _bytes(fields, 6), _list(fields, 7)
            remote.on_user(seq, payload, descriptors, bool(fields[8]) if len(fields) > 8 else False)
        elif kind == F_CLOSE:
            remote.on_close(_int(fields, 5))
        elif kind == MOVED:
            remote.on_moved(_int(fields, 5), _int(fields, 6))
        elif kind == ACK:
            remote.on_ack(_int(fields, 5))
        elif kind == LOST:
            remote.on_lost()
        elif kind == MOVED_ACK:
            pass  # for a forward that is gone already
        else:
            raise FrameError(f"frame kind {kind} is not for an end")

    def _forward(self, forward: Forward, fields: list[Any]) -> None:
        kind = fields[2]
        if kind == MOVED_ACK:
            del self.forwards[forward.cid, forward.end]
            return
        if kind == MOVED:
            forward.peer_location = _int(fields, 5)
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
        """The port a descriptor stands for, made here, its queue filled, not started."""
        if type(descriptor) is not list or len(descriptor) not in (8, 9, 10):
            raise FrameError(
                "a port descriptor is [cid, end, location, send, recv, queue, early, closing"
                " (, cursor (, asked))]"
            )
        cid, end, location, send_seq, recv_seq, queued, early, closing = descriptor[:8]
        cursor = descriptor[8] if len(descriptor) >= 9 else None
        asked = descriptor[9] if len(descriptor) == 10 else 0
        core = PortCore(self.token)
        port: MessagePort = MessagePort._create(core)
        for item in _checked_list(queued):
            kind, payload, descriptors = _checked_triple(item)
            if kind == 2:
                core.queue.append((CLOSE, None, new_stamp()))
            elif kind == 1:
                core.queue.append((MESSAGE_ERROR, (), new_stamp()))
            else:
                data, ports = self.unpack(payload, descriptors)
                core.queue.append((data, ports, new_stamp()))
        if location is None:
            if not core.queue or core.queue[-1][0] is not CLOSE:
                core.queue.append((CLOSE, None, new_stamp()))
            return port
        if type(cid) is not int or end not in (0, 1) or type(location) is not int:
            raise FrameError("a port descriptor with a bad address")
        remote = RemoteEnd(self, core, cid, end, location, _pos(send_seq), _pos(recv_seq))
        core.peer = remote
        for entry in _checked_list(early):
            if type(entry) is not list or len(entry) != 4:
                raise FrameError("an early message in a descriptor is [seq, payload, ports, ask]")
            remote.early[_pos(entry[0])] = (entry[1], entry[2], entry[3])
        if closing is not None:
            remote.closing = _pos(closing)
        if asked:
            remote.asked(min(_pos(asked), remote.read + ACK_EVERY))
            remote.ack_upto = _pos(asked)
        page = self.up_page
        if cursor is not None and page is not None and location == self.default:
            if type(cursor) is not int or not 0 <= cursor < len(page):
                raise FrameError("a port descriptor's cursor is not in the cursor page")
            remote.cursor = cursor
        return port

    def unpack(self, payload: bytes, descriptors: list[Any]) -> tuple[Any, tuple[MessagePort, ...]]:
        """A message's data and ports; a payload that does not decode is a messageerror."""
        ports = tuple(self.adopt(d) for d in _checked_list(descriptors))
        try:
            data = codec.decode(payload, ports)
        except codec.DecodeError as exc:
            logger().debug("message_undecodable", reason=str(exc))
            for port in ports:
                port.close()
            return MESSAGE_ERROR, ()
        return data, ports

    def close_described(self, descriptors: Iterable[Any]) -> None:
        """Ports that will never be delivered (their message was dropped): they close, so
        their peers hear of it."""
        if type(descriptors) is not list:
            return
        for descriptor in descriptors:
            try:
                port = self.adopt(descriptor)
            except (FrameError, TypeError, ValueError):
                continue
            port.close()


def _int(fields: list[Any], i: int) -> int:
    value = fields[i] if i < len(fields) else None
    if type(value) is not int:
        raise FrameError(f"field {i} of a frame is not an int")
    return value


def _pos(value: object) -> int:
    if type(value) is not int or value < 0:
        raise FrameError("a sequence number is not a natural number")
    return value


def _bytes(fields: list[Any], i: int) -> bytes:
    value = fields[i] if i < len(fields) else None
    if type(value) is not bytes:
        raise FrameError(f"field {i} of a frame is not bytes")
    return value


def _list(fields: list[Any], i: int) -> list[Any]:
    value = fields[i] if i < len(fields) else []
    return _checked_list(value)


def _checked_list(value: object) -> list[Any]:
    if type(value) is not list:
        raise FrameError("a frame field is not an array")
    return value


def _checked_triple(item: object) -> tuple[int, bytes, list[Any]]:
    if (
        type(item) is not list
        or len(item) != 3
        or item[0] not in (0, 1, 2)
        or type(item[1]) is not bytes
        or type(item[2]) is not list
    ):
        raise FrameError("a queued message in a descriptor is [kind, payload, ports]")
    return item[0], item[1], item[2]


def _ints(fields: list[Any], i: int) -> list[int]:
    value = _list(fields, i)
    if any(type(v) is not int for v in value):
        raise FrameError("a list of node names holds something else")
    return value


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
