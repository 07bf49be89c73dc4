"""A node: one trio run's end of the routes between processes (Mojo's `ports`, simplified).

A channel whose two ends live on different nodes gets an id `cid`; its ends are `(cid, 0)`
and `(cid, 1)`. Each end that lives here has a `RemoteEnd` (`ends.py`): the `peer` its local
core posts to, which numbers what it sends (`seq`, from 1, per direction) and sends it as
frames to the node where the other end is. Frames for an end arrive in any order after a
move, so the receiving `RemoteEnd` keeps those that come early and delivers in `seq` order.

The rules (`docs/explanation/processes.md` states them for users):

- Frames between two nodes follow one path, in order (the nodes form a tree and forward in
  the order frames arrive), so a frame sent after another, by anyone who knew of the first,
  arrives after it. Only a move can make frames of one end take two paths.
- A port moved to another node takes its queue with it (its descriptor: `carry.py`, the
  half of the node that carries ports and buffers in frames). If its peer is
  local, the peer just points to the new place. If its peer is remote, the old place keeps a
  *forward* that passes on what still comes there, and tells the peer (`MOVED`, after the
  frame that carries the port: the peer may be in it; or the new place tells it, if the
  peer is there). Each move of an end has a number (`hops`) that these frames name. The
  peer answers the moved end (at its newest place, so after it arrived) with the last `seq`
  it sent the old way (`MOVED_ACK`); once the end has received up to that one, or is closed,
  it releases the forward (`DONE`), as Mojo's proxies are removed. The forwards an end has
  not released travel with it (`behind` in its descriptor).
- A node lost while an end still needs a forward there (its move not settled) may have
  taken messages with it: the channel closes at both ends (`stranded_by`), never a gap.
- A close is announced with the last `seq` sent (`CLOSE`): the close event comes after every
  message, whatever paths they took.
- A node that is lost (`NODE_LOST`) takes with it every end it had: their peers get `close`
  after the messages that had arrived (`LOST` where only a forward knows the peer).
- A message's buffers in shared memory go as fds with its frame (`fds.py`), through every
  node on the way; a frame dropped anywhere closes them.

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
payload that does not decode does. Whatever is dropped, its fds are closed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Final, Protocol, final

import trio

from .._log import logger
from . import frames
from .carry import _NO_BUFFERS, Carrier, new_name
from .ends import ACK_EVERY, EARLY_WINDOW, SEQ_LIMIT, Forward, RemoteEnd
from .fds import Fds
from .frames import (
    ACK,
    BYE,
    DONE,
    LOST,
    MOVED,
    MOVED_ACK,
    NODE_LOST,
    ROUTES,
    USER,
    USERS,
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


class Link(Protocol):
    """A connection to a neighbouring node: frames out, frames in (to `Node.receive`, with
    the fds that came with each)."""

    def send(self, frame: bytes, fds: Fds | None = None) -> None:
        """Send `frame`, and `fds` with it (never blocks: a link buffers what it cannot send
        yet). The link owns `fds` from then on: it closes them once sent, or if it cannot
        send them."""

    def close(self) -> None:
        """Close the link; the node learns of it through `Node.link_lost`."""


class Batcher(Protocol):
    """A link's way to take a message with no ports and no shared buffers (`Node.send_user`)
    without its frame: a link that falls behind may send several of one channel's such
    messages in one USERS frame, in their place in the order of its frames."""

    def __call__(
        self, dst: int, src: int, cid: int, end: int, seq: int, payload: bytes, ask: bool
    ) -> None: ...


@final
class Node(Carrier):
    """The routes of one trio run: its ends of channels that cross to other nodes, the
    forwards of ends that left, and the links to neighbouring nodes."""

    __slots__ = (
        "_batchers",
        "_loop",
        "_moving",
        "_pumping",
        "_user_routes",
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
        self._batchers: dict[int, Batcher] = {}  # neighbour -> its link's `send_user`, if any
        # node -> the `send_user` to reach it by (None: `send`), until routes or links change
        self._user_routes: dict[int, Batcher | None] = {}
        self.routes: dict[int, int] = {}  # node -> the neighbour it is reached through
        self.default: int | None = None  # the neighbour for every other node (the parent)
        self.lost_nodes: set[int] = set()
        # (fields, neighbour, fds): to handle, in order
        self._loop: deque[tuple[Sequence[Any], int, Fds | None]] = deque()
        self._pumping = False
        self._moving: list[tuple[Any, ...]] = []  # MOVED news to send after a port's frame
        # The read cursors shared with the parent node (8-byte counters), for the ends whose
        # messages the parent keeps until they are read (see HomeEnd); None if none.
        self.up_page: memoryview | None = None

    def __repr__(self) -> str:
        return f"<Node {self.name:x} ends={len(self.ends)} forwards={len(self.forwards)}>"

    # -- links and routes -----------------------------------------------------------------

    def add_link(self, neighbour: int, link: Link, *, parent: bool = False) -> None:
        """`link` reaches `neighbour`; a parent's link is the route to every unknown node."""
        self.links[neighbour] = link
        self._user_routes.clear()
        batcher = getattr(link, "send_user", None)
        if batcher is not None:
            self._batchers[neighbour] = batcher
        self.routes[neighbour] = neighbour
        if parent:
            self.default = neighbour
        names = [self.name, *(n for n, via in self.routes.items() if via != neighbour)]
        link.send(frames.encode(neighbour, self.name, ROUTES, names))

    def link_lost(self, neighbour: int) -> None:
        """The link to `neighbour` is gone: so is every node reached through it."""
        self._batchers.pop(neighbour, None)
        self._user_routes.clear()
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
        self._user_routes.clear()
        for name in lost:
            self.routes.pop(name, None)
        for neighbour, link in list(self.links.items()):
            if neighbour != came_from:
                link.send(frames.encode(neighbour, self.name, NODE_LOST, sorted(lost)))
        for remote in list(self.ends.values()):
            if remote.location in lost:
                remote.on_lost()
            elif remote.behind is not None and remote.stranded(lost):
                remote.stranded_by(lost)
        for key, forward in list(self.forwards.items()):
            if forward.to in lost or forward.peer_location in lost:
                del self.forwards[key]
                if forward.to not in lost:
                    self.send(forward.to, LOST, forward.cid, forward.end)
                if forward.peer_location not in lost:
                    self.send(forward.peer_location, LOST, forward.cid, 1 - forward.end)

    def send(self, dst: int, kind: int, *fields: object, fds: Fds | None = None) -> None:
        """Send a frame to node `dst` by its route (to ourselves: handled after this one),
        with `fds` (taken over)."""
        if dst == self.name:
            self._loop.append(([dst, dst, kind, *fields], dst, fds))
            if not self._pumping:
                self._pump()
            return
        self._route(dst, frames.encode(dst, self.name, kind, *fields), fds)

    def send_user(self, dst: int, cid: int, end: int, seq: int, payload: bytes, ask: bool) -> None:
        """Send a USER frame of a message with no ports and no shared buffers: as `send`
        would, or, through a link that batches, as part of a USERS frame."""
        try:
            batcher = self._user_routes[dst]
        except KeyError:
            batcher = None
            if dst != self.name and dst not in self.lost_nodes:
                via = self.routes.get(dst, self.default)
                batcher = None if via is None else self._batchers.get(via)
            self._user_routes[dst] = batcher
        if batcher is not None:
            batcher(dst, self.name, cid, end, seq, payload, ask)
        else:
            self.send(dst, USER, cid, end, seq, payload, [], ask)

    def _route(self, dst: int, frame: bytes, fds: Fds | None) -> None:
        via = self.routes.get(dst, self.default)
        link = None if via is None or dst in self.lost_nodes else self.links.get(via)
        if link is None:
            self._undeliverable(frames.decode(frame), fds)
            return
        link.send(frame, fds)

    def _undeliverable(self, fields: Sequence[Any], fds: Fds | None) -> None:
        """A frame with nowhere to go: the ports it carries must still close (its fds too)."""
        try:
            if fields[2] == USER:
                self.drop(fields[7], _buffers(fields), fds)
        finally:
            if fds:
                fds.close()

    # -- what arrives ---------------------------------------------------------------------

    def receive(self, frame: bytes, neighbour: int, fds: Fds | None = None) -> None:
        """A frame from the link to `neighbour` (the module's docstring says what it may send),
        and the fds that came with it (taken over: passed on with the frame, adopted as its
        buffers, or closed).

        Raises:
            FrameError: `frame` breaks the protocol (the link must be dropped).
        """
        try:
            fields = frames.decode(frame)
            dst, src = fields[0], fields[1]
            if self.routes.get(src, self.default) != neighbour or src == self.name:
                raise FrameError(f"a frame from node {src:x}, which is not behind the link")
            if dst != self.name:
                self._pass_on(fields, frame, neighbour, fds)
                return
            if self._pumping:  # a link delivering while we handle a frame: after it, in order
                self._loop.append((fields, neighbour, fds))
                return
            self._pumping = True
            try:
                self._handle(fields, neighbour, fds)
                if self._loop:
                    self._drain_loop()
            finally:
                self._pumping = False
        except FrameError:
            if fds:
                fds.close()
            raise
        except Exception as exc:  # a bug of ours: the link goes, not the process
            if fds:
                fds.close()
            logger(node=self.name).error("frame_failed", neighbour=neighbour, exc_info=True)
            raise FrameError(f"handling a frame failed: {exc!r}") from exc

    def _pass_on(
        self, fields: Sequence[Any], frame: bytes, neighbour: int, fds: Fds | None
    ) -> None:
        """A frame for another node, from `neighbour`: on to the next hop, never back."""
        dst = fields[0]
        if ROUTES <= fields[2] <= BYE:
            raise FrameError(f"a frame of kind {fields[2]} to pass on to node {dst:x}")
        if dst in self.lost_nodes:  # (we may have said so while it was on its way)
            self._undeliverable(fields, fds)
            return
        via = self.routes.get(dst, self.default)
        if via == neighbour:
            raise FrameError(f"a frame for node {dst:x} from the link that leads to it")
        link = None if via is None else self.links.get(via)
        if link is None:
            self._undeliverable(fields, fds)
        else:
            link.send(frame, fds)

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

    def _handle(self, fields: Sequence[Any], neighbour: int, fds: Fds | None) -> None:
        """Handle a frame for this node; what of `fds` nobody took is closed after it."""
        try:
            self._dispatch(fields, neighbour, fds)
        finally:
            if fds:
                fds.close()

    def _dispatch(self, fields: Sequence[Any], neighbour: int, fds: Fds | None) -> None:
        kind = fields[2]
        if ROUTES <= kind <= BYE:  # from the neighbour itself
            if fields[1] != neighbour:
                raise FrameError(f"a frame of kind {kind} from beyond the neighbour")
            if kind == ROUTES:
                self._routes(fields[3], neighbour)
            elif kind == NODE_LOST:
                self._node_lost(fields[3], neighbour)
            return
        key = (fields[3], fields[4])
        remote = self.ends.get(key)
        if kind == USERS:
            self._users(key, remote, fields, neighbour)
            return
        if remote is None:
            forward = self.forwards.get(key)
            if forward is not None:
                self._forward(forward, fields, fds)
            elif kind == USER:  # an end that is gone: its ports go
                self.drop(fields[7], _buffers(fields), fds)
            elif kind == MOVED:  # a gone end: the moved one waits for its close
                self.send(fields[5], MOVED_ACK, key[0], 1 - key[1], -1, fields[7], fields[6])
            return  # MOVED_ACK: the end closed, releasing all; DONE: a forward that went
        if kind == USER:
            if (
                type(remote) is RemoteEnd
                and not fields[7]
                and len(fields) == 9
                and remote.take_plain(fields[5], fields[6], fields[8])
            ):
                return
            remote.on_user(fields[5], fields[6], fields[7], fields[8], _buffers(fields), fds)
        elif kind == F_CLOSE:
            remote.on_close(fields[5])
        elif kind == MOVED:
            remote.on_moved(fields[5], fields[6], fields[7])
        elif kind == ACK:
            remote.on_ack(fields[5])
        elif kind == LOST:
            remote.on_lost()
        elif kind == MOVED_ACK:
            remote.on_moved_ack(fields[5], fields[6], fields[7])
        # DONE: for the forward of an earlier visit of the end, back here; REHOMED: not
        # acted on yet

    def _users(
        self,
        key: tuple[int, int],
        remote: RemoteEnd | None,
        fields: Sequence[Any],
        neighbour: int,
    ) -> None:
        """A USERS frame: its messages, handled as the USER frames they stand for would be,
        one after the other (what the handling of one sends to this node is handled before
        the next, as between frames)."""
        first, payloads, asks = fields[5], fields[6], fields[7]
        plain = type(remote) is RemoteEnd
        if plain and remote.take_all_plain(first, payloads, asks):  # type: ignore[union-attr]
            if self._loop:
                self._drain_loop()
            return
        asked = set(asks)
        ends = self.ends
        for i, payload in enumerate(payloads):
            if remote is not None and ends.get(key) is remote:
                seq = first + i
                if not (plain and remote.take_plain(seq, payload, i in asked)):
                    remote.on_user(seq, payload, _NO_BUFFERS, i in asked, _NO_BUFFERS, None)
            else:  # not (or no longer) here: a forward's, or gone
                remote = None
                user = [fields[0], fields[1], USER, *key, first + i, payload, [], i in asked]
                self._dispatch(user, neighbour, None)
            if self._loop:
                self._drain_loop()

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
        self._user_routes.clear()
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

    def _forward(self, forward: Forward, fields: Sequence[Any], fds: Fds | None) -> None:
        kind = fields[2]
        if kind == DONE:
            if forward.hops == fields[5]:  # (else for an older visit of the end: stale)
                del self.forwards[forward.cid, forward.end]
            return
        if kind == MOVED:
            forward.peer_location = fields[5]
        passed = Fds(fds.take_all()) if fds else None
        self.send(forward.to, kind, *fields[3:], fds=passed)
        if kind == LOST:  # the peer is gone: nothing more comes this way
            del self.forwards[forward.cid, forward.end]


def _buffers(fields: Sequence[Any]) -> list[int]:
    """A USER frame's shared buffers' lengths (none if it has no such field)."""
    return fields[9] if len(fields) > 9 else _NO_BUFFERS


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
