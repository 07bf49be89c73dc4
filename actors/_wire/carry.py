"""Ports and buffers in frames: how a port leaves a node (its descriptor: its queue, its
sequence numbers, the forward it leaves behind) and arrives at another (`adopt`), and how a
message's payload and shared buffers are packed and unpacked. `Node` has these as methods
(`Carrier` is its half that knows descriptors); `frames.py` says what a descriptor holds and
checks its shape, this module what it means.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Final, cast

import trio

from .._buffers import ArrayBuffer
from .._log import logger
from .._ports import MessagePort, _close_ports_in
from .._queue import CLOSE, LAGGED, MESSAGE_ERROR, PortCore, new_stamp
from . import codec, shm
from .ends import ACK_EVERY, EARLY_WINDOW, SEQ_LIMIT, Forward, RemoteEnd
from .fds import MAX_FDS, Fds, adopt_shared, close_fds, export_shared, share_shared
from .frames import MOVED

if TYPE_CHECKING:
    from .node import Node

__all__ = ["Carrier", "Unadoptable", "new_name"]

_NO_BUFFERS: Final[list[int]] = []  # never changed: a message with no shared buffers


def new_name() -> int:
    """A fresh node or channel name: 63 random bits."""
    return secrets.randbits(63)


class Unadoptable(Exception):
    """A descriptor that cannot be an end arriving here."""


class Carrier:
    """The half of a `Node` that carries ports and buffers in frames (the node gives the
    attributes and the method named here)."""

    __slots__ = ()

    name: int
    token: trio.lowlevel.TrioToken
    ends: dict[tuple[int, int], RemoteEnd]
    forwards: dict[tuple[int, int], Forward]
    default: int | None
    lost_nodes: set[int]
    up_page: memoryview | None
    _moving: list[tuple[Any, ...]]

    def send(self, dst: int, kind: int, *fields: object, fds: Fds | None = None) -> None:
        raise NotImplementedError

    def describe(self, port: MessagePort, dst: int, fds: Fds) -> list[Any]:
        """`port` (a shell made by the transfer commit) leaves for node `dst`: its
        descriptor. Its queue goes with it (the fds of its messages added to `fds`); its peer
        learns where it went."""
        core = port._core
        assert core is not None
        port._core = None
        port._state = "transferred"
        queued = self._queued(core, dst, fds)
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
            RemoteEnd(cast("Node", self), peer, cid, 0, dst)
            peer.peer = self.ends[cid, 0]
            return [cid, 1, self.name, 1, 1, queued, [], None]
        assert isinstance(peer, RemoteEnd)
        remote = peer
        key = (remote.cid, remote.end)
        self.ends.pop(key, None)
        core.reads = None
        early = [self._early_entry(seq, frame, fds) for seq, frame in sorted(remote.early.items())]
        stays = dst == self.name  # adopted here again at once: its peer need not know
        hops = remote.hops if stays else remote.hops + 1
        behind = list(remote.behind or ())
        if not stays:
            behind.append([hops, self.name, -2])
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
            hops,
            remote.peer_hops,
            behind,
        ]
        if stays:
            return descriptor
        self.forwards[key] = Forward(remote.cid, remote.end, dst, remote.location, hops)
        # The news follows the frame that carries the port (`announce_moves`): its answer
        # then finds the port there (the peer may be in that very frame, too). A port that
        # goes to its peer's node carries the news itself (`adopt` tells the peer): so it
        # cannot be lost with this node if it dies right after the frame.
        if remote.location != dst:
            self._moving.append(
                (remote.location, MOVED, remote.cid, 1 - remote.end, dst, self.name, hops)
            )
        return descriptor

    def announce_moves(self) -> None:
        """Tell the peers of the ports just described where they went (`MOVED`): called once
        the frame that carries them is sent."""
        moving = self._moving[:]
        self._moving.clear()
        for dst, kind, *fields in moving:
            self.send(dst, kind, *fields)

    def _early_entry(self, seq: int, frame: tuple[Any, ...], fds: Fds) -> list[Any]:
        """An early frame `(payload, descriptors, ask, buffers, fds)`, for a descriptor:
        `[seq, payload, descriptors, ask]`, and `buffers, n` after it if it came with fds
        (its own buffers' and its ports' messages'), its `n` fds added to `fds`. Past
        `MAX_FDS` they are closed, and it arrives as a messageerror: a frame carries no
        more."""
        payload, descriptors, ask, buffers, kept = frame
        taken = kept.take_all() if kept else []
        if not buffers and not taken:
            return [seq, payload, descriptors, ask]
        if len(fds) + len(taken) > MAX_FDS:
            close_fds(taken)
            logger(node=self.name).warning(
                "message_buffers_lost",
                reason=f"a moving port's early messages hold more than {MAX_FDS} fds",
            )
            taken = []
        fds.extend(taken)
        return [seq, payload, descriptors, ask, buffers, len(taken)]

    def _queued(self, core: PortCore, dst: int, fds: Fds) -> list[Any]:
        """What waits in `core`'s queue, for its descriptor: `[kind, payload, descriptors]`,
        and the lengths of its shared buffers after them if it has any (their fds added to
        `fds`)."""
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
                    payload, buffers, _ = self.pack(data, ports, fds)
                except Exception:  # what arrived once can go again; if not, it is an error
                    _close_ports_in([(data, ports, 0)])
                    items.append([1, b"", []])
                    continue
                descriptors = [self.describe(p, dst, fds) for p in ports] if ports else []
                items.append(
                    [0, payload, descriptors, buffers] if buffers else [0, payload, descriptors]
                )
        return items

    def pack(
        self, data: Any, ports: Any, fds: Fds | None, *, share: bool = False
    ) -> tuple[bytes, list[int], Fds | None]:
        """A message's payload, the lengths of its buffers that go as fds, and the fds:
        added to `fds`, or to a new `Fds` if it is `None` and there are any. Within
        `MAX_FDS` fds in all, every buffer in a memfd goes as one, the others are copied into
        the payload. Each such buffer is detached (`data` is a clone that nobody else holds);
        with `share`, it is left as it is and a duplicate of its fd goes (for a message kept
        here after it was sent: both sides then map the same bytes).

        Raises:
            DataCloneError: the wire cannot carry `data` (nothing changed).
        """
        transfer = list(ports) if ports else []
        shared: list[ArrayBuffer] = []
        room = MAX_FDS - len(fds) if fds is not None else MAX_FDS
        payload, _ = codec.encode(data, transfer, shared, room)
        if not shared:
            return payload, _NO_BUFFERS, fds
        into = Fds() if fds is None else fds
        lengths = (share_shared if share else export_shared)(shared, into)
        if lengths is None:  # a memfd refused its seals: nothing was detached
            payload, _ = codec.encode(data, transfer)
            return payload, _NO_BUFFERS, fds
        return payload, lengths, into

    def adopt(self, descriptor: list[Any], fds: Fds | None = None) -> MessagePort:
        """The port a descriptor (of the shape `frames.decode` checks) stands for, made here,
        its queue filled, not started; it takes the fds of its messages from `fds`.

        Raises:
            Unadoptable: the descriptor cannot be an end arriving here; nothing was made, and
                nothing taken from `fds`.
        """
        cid, end, location, send_seq, recv_seq, queued, early, closing = descriptor[:8]
        cursor = descriptor[8] if len(descriptor) > 8 else None
        asked = descriptor[9] if len(descriptor) > 9 else 0
        hops, peer_hops, behind = descriptor[10:13] if len(descriptor) > 10 else (0, 0, [])
        for i, item in enumerate(queued):
            if item[0] == 2 and (location is not None or i != len(queued) - 1):
                raise Unadoptable("a close before the end of a queue")
        remote = None
        page = self.up_page
        if location is not None:
            _check_adoptable(self, cid, end, send_seq, recv_seq, early, closing)
            if not 0 <= asked < SEQ_LIMIT:
                raise Unadoptable(f"asked to acknowledge {asked}: out of range")
            if not (0 <= hops < SEQ_LIMIT and 0 <= peer_hops < SEQ_LIMIT):
                raise Unadoptable(f"move numbers {hops}, {peer_hops} out of range")
            if not all(0 < h <= hops and -2 <= last < SEQ_LIMIT for h, _, last in behind):
                raise Unadoptable("forwards left behind by moves it did not make")
            if cursor is not None and page is not None and location == self.default:
                if not 0 <= cursor < len(page):
                    raise Unadoptable(f"a read cursor {cursor} outside the cursor page")
            else:
                cursor = None  # only a port its parent keeps has one
        core = PortCore(self.token)
        port: MessagePort = MessagePort._create(core)
        if location is not None:  # first, so that the queue's ports cannot claim its place
            node = cast("Node", self)
            remote = RemoteEnd(node, core, cid, end, location, send_seq, recv_seq, hops, peer_hops)
            core.peer = remote
            remote.closing = closing
            # Those here are gone already: the end is back where it left them.
            remote.behind = [list(e) for e in behind if e[1] != self.name] or None
        queue = core.queue
        for item in queued:  # the queue's fds come first, then the early messages'
            kind, payload, descriptors = item[0], item[1], item[2]
            buffers = item[3] if len(item) > 3 else _NO_BUFFERS
            if kind == 0:
                data, ports = self.unpack(payload, descriptors, buffers, fds)
                queue.append((data, ports, new_stamp()))
                continue
            if fds:  # a close or a messageerror carries nothing: a peer's lie
                close_fds(fds.take(_message_fds(buffers, descriptors)))
            if kind == 2:
                queue.append((CLOSE, None, new_stamp()))
            else:
                queue.append((MESSAGE_ERROR, (), new_stamp()))
        if remote is None:
            if not queue or queue[-1][0] is not CLOSE:
                queue.append((CLOSE, None, new_stamp()))
            return port
        for entry in early:
            seq, payload, descriptors, ask = entry[:4]
            buffers, count = (entry[4], entry[5]) if len(entry) == 6 else (_NO_BUFFERS, 0)
            kept = Fds(fds.take(count)) if fds and count else None
            remote.early[seq] = (payload, descriptors, ask, buffers, kept)
        if asked:
            remote.asked(min(asked, remote.read + ACK_EVERY))
            remote.ack_upto = asked
        remote.cursor = cursor
        if location == self.name and remote.behind:  # its peer is here: the news is ours
            forward = remote.behind[-1]
            if forward[0] == hops and forward[2] == -2:
                self.send(self.name, MOVED, cid, 1 - end, self.name, forward[1], hops)
        if closing is not None:
            remote._maybe_closed()
        lost = self.lost_nodes
        if lost and remote.peer is not None:  # news it missed on its way here
            if location in lost:
                remote.on_lost()
            elif remote.stranded(lost):
                remote.stranded_by(lost)
        return port

    def unpack(
        self,
        payload: bytes,
        descriptors: list[Any],
        buffers: list[int] = _NO_BUFFERS,
        fds: Fds | None = None,
    ) -> tuple[Any, tuple[MessagePort, ...]]:
        """A message's data and ports, its shared buffers made of the fds it takes from
        `fds` (its own first, then its ports'); a payload that does not decode, a port that
        cannot be adopted, or fds that are not the buffers it says, make it a messageerror
        (and its ports close)."""
        if not descriptors and not buffers:  # the common case, in fewer steps
            try:
                return codec.decode(payload, (), ()), ()
            except codec.DecodeError:
                pass  # the way below says so
        own = fds.take(len(buffers)) if fds and buffers else []
        ports: list[MessagePort] = []
        try:
            if descriptors:
                for descriptor in descriptors:
                    ports.append(self.adopt(descriptor, fds))
            adopted = tuple(ports)
            taken, own = own, []
            shared = adopt_shared(buffers, taken) if buffers else ()
            return codec.decode(payload, adopted, shared), adopted
        except (codec.DecodeError, Unadoptable, shm.BadFdError) as exc:
            logger().debug("message_undecodable", reason=str(exc))
            for port in ports:
                port.close()
            if len(ports) < len(descriptors):  # the one refused is dropped, the rest close
                refused = descriptors[len(ports)]
                if fds:
                    close_fds(fds.take(_descriptor_fds(refused)))
                self.close_described(descriptors[len(ports) + 1 :], fds)
            return MESSAGE_ERROR, ()
        finally:
            close_fds(own)  # not handed to its buffers: a port refused, or a bug

    def drop(self, descriptors: list[Any], buffers: list[int], fds: Fds | None) -> None:
        """A message that will never be delivered: its ports close, so that their peers hear
        of it, and its fds (from `fds`) too."""
        if fds and buffers:
            close_fds(fds.take(len(buffers)))
        self.close_described(descriptors, fds)
        if fds:
            fds.close()

    def close_described(self, descriptors: list[Any], fds: Fds | None = None) -> None:
        """Ports that will never be delivered (their message was dropped): they close, so
        their peers hear of it (those that cannot be adopted here are dropped). Their
        messages' fds are taken from `fds`."""
        for descriptor in descriptors:
            try:
                port = self.adopt(descriptor, fds)
            except Unadoptable:
                if fds:
                    close_fds(fds.take(_descriptor_fds(descriptor)))
                continue
            port.close()


def _descriptor_fds(descriptor: list[Any]) -> int:
    """How many of a frame's fds a descriptor (of the shape `frames.decode` checks) owns:
    its queued messages' (theirs, then their ports'), then its early messages'."""
    count = 0
    for item in descriptor[5]:
        count += _message_fds(item[3] if len(item) > 3 else _NO_BUFFERS, item[2])
    for entry in descriptor[6]:
        if len(entry) == 6:
            count += entry[5]
    return count


def _message_fds(buffers: list[int], descriptors: list[Any]) -> int:
    """How many of a frame's fds a message owns: its shared buffers', then its ports'."""
    return len(buffers) + sum(_descriptor_fds(d) for d in descriptors)


def _check_adoptable(
    node: Carrier,
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
