"""Large buffers cross processes as fds: through ports, through nodes on the way, in the queue of
a port that moves; every frame dropped on the way closes its fds; hostile fds are refused.

A buffer of ``SHARED_MEMORY_THRESHOLD`` bytes or more keeps its bytes in a memfd; a message
that holds one and goes to a port in another process sends the memfd's fd beside the frame
(``actors._wire.fds``), not its bytes. The process tests run real process actors (``bounce``
and ``pitch`` below) and check afterwards that no child process is left; the others run nodes
linked in memory, or a node linked by a real socket to a peer played by the test.
"""

from __future__ import annotations

import array
import contextlib
import gc
import hashlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import test_wire_routes as routes
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actors
from actors import ArrayBuffer, MessageChannel, MessagePort, Restart
from actors._buffers import SHARED_MEMORY_THRESHOLD
from actors._process.link import SocketLink
from actors._queue import PortCore
from actors._wire import codec, frames, shm
from actors._wire.fds import Fds
from actors._wire.frames import USER
from actors._wire.home import SLOT, CursorPage, HomeEnd
from actors._wire.memory import bridge, link_nodes
from actors._wire.node import EARLY_WINDOW, Node, RemoteEnd, local_node, new_name

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="memfds, fd passing and /proc are Linux's"
)

MIB = 1 << 20
LARGE = SHARED_MEMORY_THRESHOLD
BIG = 64 * MIB


# -- helpers -----------------------------------------------------------------------------------


def _fds() -> list[str]:
    """What each of this process's fds is (readlink of /proc/self/fd/*)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd, closed already
            found.append(os.readlink(f"/proc/self/fd/{name}"))
    return found


def _memfds() -> int:
    return sum(1 for target in _fds() if target.startswith("/memfd:"))


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _children() -> set[int]:
    """This process's child processes, reaped or not (a zombie is still listed)."""
    pids: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            pids.update(int(p) for p in f.read().split())
    return pids


def _shm_names() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def _filled(size: int, seed: int = 0) -> ArrayBuffer:
    """A buffer of `size` bytes in which every MiB differs (so a misplaced page shows)."""
    buf = ArrayBuffer(size)
    block = hashlib.shake_256(f"block {seed}".encode()).digest(min(size, MIB))
    with buf.view() as view:
        for start in range(0, size, MIB):
            chunk = view[start : start + MIB]
            chunk[:] = block[: len(chunk)]
            chunk[: min(8, len(chunk))] = start.to_bytes(8, "little")[: len(chunk)]
            chunk.release()
    return buf


def _digest(buf: ArrayBuffer) -> str:
    with buf.view() as view:
        return hashlib.blake2b(view, digest_size=16).hexdigest()


def _settled() -> tuple[int, int]:
    """The fds and memfds of this process, once what is unreachable is collected."""
    gc.collect()
    return _fd_count(), _memfds()


@pytest.fixture
def no_child_left() -> Iterator[None]:
    """The test starts processes: none is left afterwards, not even a zombie."""
    before = _children()
    shm_before = _shm_names()
    yield
    assert _children() <= before, "a child process is left"
    assert _shm_names() <= shm_before, "something was left in /dev/shm"


def _socket_bytes() -> int:
    """Bytes this run's node wrote to and read from its sockets so far."""
    links = local_node().links.values()
    return sum(link.sent + link.received for link in links if isinstance(link, SocketLink))


# -- process actors ----------------------------------------------------------------------------


async def bounce(inbox: MessagePort) -> None:
    """A process actor answering requests on `inbox`, each a tuple:

    - ``("echo", buf)``: ``("echo", digest, buf)``, the buffer transferred back;
    - ``("copy", buf)``: ``("copy", digest, buf)``, the buffer copied back (not transferred);
    - ``("back", buf)``: ``("back", buf)``, the buffer transferred back;
    - ``("drain",)`` with a port: the first message of that port, a buffer, back as
      ``("drained", digest, buf)``;
    - ``("hold", buf)``: keeps the buffer; ``("held", n)``;
    - ``("fds",)``: ``("fds", n)``, the number of fds of this process;
    - ``("watch",)`` with a port: keeps the port (read, so it closes when this process ends);
      ``("watching",)``;
    - ``("die",)``: the process exits at once (``os._exit``), the requests after it unread.
    """
    held = []
    async for event in inbox:
        op, *args = event.data
        if op == "echo":
            inbox.post_message(("echo", _digest(args[0]), args[0]), [args[0]])
        elif op == "back":
            inbox.post_message(("back", args[0]), [args[0]])
        elif op == "copy":
            inbox.post_message(("copy", _digest(args[0]), args[0]))
        elif op == "drain":
            port = event.ports[0]
            got = (await port.receive()).data
            inbox.post_message(("drained", _digest(got), got), [got])
            port.close()
        elif op == "hold":
            held.append(args[0])
            inbox.post_message(("held", len(held)))
        elif op == "fds":
            inbox.post_message(("fds", _fd_count()))
        elif op == "watch":
            held.append(event.ports[0])
            inbox.post_message(("watching",))
        elif op == "die":
            os._exit(3)


async def pitch(control: MessagePort, out: MessagePort) -> None:
    """A process actor that, asked ``("pitch", size)`` on `control`, sends a buffer of that
    size on `out`, waits for it to come back (from a `bounce` on the other end), and reports
    ``(digest sent, digest the other side saw, digest of what came back, detached)``."""
    async for event in control:
        _, size = event.data
        buf = _filled(size, seed=7)
        sent = _digest(buf)
        out.post_message(("echo", buf), [buf])
        _, seen, back = (await out.receive()).data
        control.post_message((sent, seen, _digest(back), buf.detached))
    out.close()


async def digest_of(out: MessagePort, buf: ArrayBuffer) -> None:
    """A process actor that reports the digest of the buffer it was spawned with."""
    out.post_message(_digest(buf))
    out.close()


async def scribbler(out: MessagePort, buf: ArrayBuffer) -> None:
    """A process actor that reports the digest of the buffer it was spawned with, writes
    over the buffer, and exits (status 3) once told to."""
    out.post_message(_digest(buf))
    with buf.view() as view:
        view[:] = bytes(len(view))
    await out.receive()
    os._exit(3)


@asynccontextmanager
async def bouncing(restart: Restart = Restart.TRANSIENT) -> AsyncIterator[Any]:
    """A `bounce` in a process: yields (the port to it, its handle)."""
    channel = MessageChannel()
    async with actors.open_supervisor() as sup:
        handle = sup.spawn(bounce, channel.port2, process=True, restart=restart)
        try:
            yield channel.port1, handle
        finally:
            channel.port1.close()


async def ask(port: MessagePort, request: tuple[Any, ...], transfer: Any = ()) -> Any:
    port.post_message(request, list(transfer))
    return (await port.receive()).data


# -- the codec: buffers beside the bytes ----------------------------------------------------


def test_the_codec_names_memfd_buffers_and_copies_the_others() -> None:
    """With a `shared` list, each memfd buffer (once, however often it is referred to) goes
    in it and the bytes name it; small ones are copied in; nothing is detached."""
    big, small = _filled(LARGE, seed=1), ArrayBuffer(b"small")
    message = {"a": big, "b": [big, small], "c": small}
    shared: list[ArrayBuffer] = []
    payload, _ = codec.encode(message, [], shared, 5)
    assert shared == [big]
    assert not big.detached
    assert len(payload) < 200
    stand_in = ArrayBuffer(LARGE)
    got: Any = codec.decode(payload, (), [stand_in])
    assert got["a"] is stand_in
    assert got["b"][0] is stand_in
    assert bytes(got["c"]) == b"small"
    assert got["b"][1] is got["c"]


def test_the_codec_copies_what_does_not_fit_in_the_room() -> None:
    """Past `room` shared buffers, the next ones' bytes go in the payload."""
    bufs = [_filled(LARGE, seed=i) for i in range(3)]
    shared: list[ArrayBuffer] = []
    payload, _ = codec.encode(bufs, [], shared, 2)
    assert shared == bufs[:2]
    got: Any = codec.decode(payload, (), ["first", "second"])
    assert got[:2] == ["first", "second"]
    assert _digest(got[2]) == _digest(bufs[2])


def test_a_shared_buffer_the_frame_does_not_have_is_a_decode_error() -> None:
    """A payload that names a shared buffer past those that came does not decode."""
    shared: list[ArrayBuffer] = []
    payload, _ = codec.encode([_filled(LARGE)], [], shared, 1)
    with pytest.raises(codec.DecodeError, match="SHARED 0: 0 buffers"):
        codec.decode(payload, ())


# -- through ports, to a process and back ------------------------------------------------------


async def test_a_64_mib_buffer_goes_to_a_process_and_back_as_an_fd(no_child_left: None) -> None:
    """Transferred to a process actor and back: intact, the sender's buffer detached, and
    only a few hundred bytes on the socket for 128 MiB moved."""
    async with bouncing() as (port, _):
        await ask(port, ("fds",))  # the process is up: what follows is the transfer alone
        before = _socket_bytes()
        buf = _filled(BIG)
        sent = _digest(buf)
        _, seen, back = await ask(port, ("echo", buf), [buf])
        assert buf.detached
        assert buf.byte_length == 0
        assert seen == sent, "the child saw other bytes"
        assert back.byte_length == BIG
        assert _digest(back) == sent
        assert _socket_bytes() - before < 4096
        del back


async def test_a_buffer_spawned_with_goes_as_an_fd(no_child_left: None) -> None:
    """A large buffer among a process actor's arguments reaches the child as an fd (the
    arguments travel in the `hello` message like any other)."""
    channel = MessageChannel()
    buf = _filled(8 * MIB, seed=5)
    digest = _digest(buf)
    async with actors.open_supervisor() as sup:
        sup.spawn(digest_of, channel.port2, buf, process=True, restart=Restart.TRANSIENT)
        assert (await channel.port1.receive()).data == digest
        assert _socket_bytes() < 64 * 1024
        channel.port1.close()
    assert buf.detached


async def test_each_incarnation_gets_its_own_copy_of_a_buffer_argument(
    no_child_left: None,
) -> None:
    """A large buffer argument goes to each incarnation as an fd of its own copy: what one
    incarnation writes into it does not reach the next (as small ones, copied in the bytes)."""
    channel = MessageChannel()
    buf = _filled(LARGE + MIB, seed=6)
    digest = _digest(buf)
    with trio.fail_after(30):
        async with actors.open_supervisor() as sup:
            handle = sup.spawn(
                scribbler, channel.port2, buf, process=True, restart=Restart.TRANSIENT
            )
            assert (await channel.port1.receive()).data == digest
            channel.port1.post_message("die")  # once it has written over its buffer
            assert (await channel.port1.receive()).data == digest
            assert handle.statistics().incarnation == 2
            sup.cancel()
    channel.port1.close()


async def test_a_buffer_posted_without_transfer_is_copied_once_then_shared(
    no_child_left: None,
) -> None:
    """Not transferred, a large buffer is cloned (the sender keeps its own) and the clone
    goes as an fd; the answer, a copy too, also comes as an fd."""
    async with bouncing() as (port, _):
        await ask(port, ("fds",))
        before = _socket_bytes()
        buf = _filled(4 * MIB)
        _, seen, back = await ask(port, ("copy", buf))
        assert not buf.detached
        assert seen == _digest(buf) == _digest(back)
        with buf.view() as mine, back.view() as theirs:
            mine[0] ^= 0xFF  # two buffers, not one
            assert theirs[0] != mine[0]
        assert _socket_bytes() - before < 4096


async def test_small_buffers_still_go_inline(no_child_left: None) -> None:
    """Under the threshold a buffer's bytes go in the frame, as before."""
    async with bouncing() as (port, _):
        await ask(port, ("fds",))
        before = _socket_bytes()
        buf = _filled(LARGE - 1)
        digest = _digest(buf)
        _, seen, back = await ask(port, ("echo", buf), [buf])
        assert seen == digest == _digest(back)
        assert _socket_bytes() - before > 2 * (LARGE - 1)


async def test_a_slot_port_keeps_large_buffers_for_the_next_incarnation(
    no_child_left: None,
) -> None:
    """A process actor's slot port is kept by its parent (`actors._wire.home`), and so are
    the buffers of the messages it has not read: sent as fds while the process runs, kept
    (shared, not copied) while it is down or restarting, sent again to the next incarnation;
    each arrives whole, and once the slot is gone no fd is left."""
    before = _settled()
    channel, watch = MessageChannel(), MessageChannel()
    port = channel.port1
    bufs = [_filled(LARGE + MIB, seed=10 + i) for i in range(4)]
    digests = [_digest(b) for b in bufs]
    with trio.fail_after(30):
        async with actors.open_supervisor(backoff=actors.Backoff(initial=0.2)) as sup:
            handle = sup.spawn(bounce, channel.port2, process=True, restart=Restart.TRANSIENT)
            _, seen, back = await ask(port, ("echo", bufs[0]), [bufs[0]])  # it runs
            assert seen == _digest(back) == digests[0]
            assert _socket_bytes() < 64 * 1024, "a buffer's bytes went through the socket"
            assert await ask(port, ("watch",), [watch.port2]) == ("watching",)
            port.post_message(("die",))
            port.post_message(("echo", bufs[1]), [bufs[1]])  # sent, never read: kept
            with pytest.raises(trio.EndOfChannel):  # the process is gone (its ports close)
                await watch.port1.receive()
            port.post_message(("echo", bufs[2]), [bufs[2]])  # while it is down
            port.post_message(("copy", bufs[3]))  # a clone, kept as well
            got = [(await port.receive()).data for _ in range(3)]
            assert handle.statistics().incarnation == 2
            assert _socket_bytes() < 64 * 1024, "a buffer's bytes went through the socket"
            assert [(op, seen, _digest(buf)) for op, seen, buf in got] == [
                (op, d, d) for op, d in zip(["echo", "echo", "copy"], digests[1:], strict=True)
            ]
            assert all(b.detached for b in bufs[:3])
            assert not bufs[3].detached
            port.close()
    watch.port1.close()
    del back, got, bufs
    assert _settled() == before, "an fd was left open"


async def test_through_a_node_on_the_way(no_child_left: None) -> None:
    """Process A sends 64 MiB to process B on a port between them: the frames go through
    this process's node, the fds with them; nothing of the bytes goes through a socket."""
    control, ab = MessageChannel(), MessageChannel()
    async with actors.open_supervisor() as sup:
        sup.spawn(bounce, ab.port2, process=True, restart=Restart.TRANSIENT)
        sup.spawn(pitch, control.port2, ab.port1, process=True, restart=Restart.TRANSIENT)
        await ask(control.port1, ("pitch", 16))  # both are up, and know their way
        fds, memfds = _settled()
        before = _socket_bytes()
        sent, seen, back, detached = await ask(control.port1, ("pitch", BIG))
        assert sent == seen == back
        assert detached
        assert _socket_bytes() - before < 8192, "the buffer's bytes went through this process"
        assert _settled() == (fds, memfds), "this process kept an fd it passed on"
        control.port1.close()


async def test_a_buffer_queued_in_a_port_that_moves_goes_as_an_fd(no_child_left: None) -> None:
    """A message waiting in a port's queue when the port moves to another process takes its
    buffer with it as an fd."""
    async with bouncing() as (port, _):
        await ask(port, ("fds",))
        before = _socket_bytes()
        channel = MessageChannel()
        buf = _filled(BIG, seed=3)
        sent = _digest(buf)
        channel.port1.post_message(buf, [buf])  # waits in port2's queue
        _, seen, back = await ask(port, ("drain",), [channel.port2])
        assert buf.detached
        assert seen == sent == _digest(back)
        assert _socket_bytes() - before < 4096
        channel.port1.close()


async def test_many_buffers_at_once_keep_their_order(no_child_left: None) -> None:
    """A burst of buffers posted without waiting (the link batches what it cannot write at
    once, each frame with its fds) comes back whole and in order."""
    async with bouncing() as (port, _):
        await ask(port, ("fds",))
        bufs = [_filled(LARGE + i, seed=i) for i in range(60)]
        digests = [_digest(b) for b in bufs]
        for buf in bufs:
            port.post_message(("echo", buf), [buf])
        for i, digest in enumerate(digests):
            _, seen, back = (await port.receive()).data
            assert seen == digest == _digest(back)
            assert back.byte_length == LARGE + i


async def test_no_fd_leaks_over_a_thousand_transfers(no_child_left: None) -> None:
    """1000 round trips of a 1 MiB buffer: neither process ends with more fds than it began
    with (beyond what a buffer still held keeps)."""
    async with bouncing() as (port, _):
        _, child_before = await ask(port, ("fds",))
        fds, memfds = _settled()
        for i in range(1000):
            buf = ArrayBuffer(LARGE)
            with buf.view() as view:
                view[i % LARGE] = i % 251 + 1
            _, back = await ask(port, ("back", buf), [buf])
            with back.view() as view:
                assert view[i % LARGE] == i % 251 + 1
            del back
        _, child_after = await ask(port, ("fds",))
        assert _settled() == (fds, memfds)
        assert child_after == child_before


async def test_a_killed_child_leaves_no_memfd_behind(no_child_left: None) -> None:
    """A child holding buffers it received, with more on their way to it, is killed: this
    process holds none of their memfds afterwards, and nothing is left in /dev/shm."""
    fds, memfds = _settled()
    async with bouncing(Restart.TEMPORARY) as (port, handle):
        for i in range(3):
            buf = _filled(4 * MIB, seed=i)
            assert await ask(port, ("hold", buf), [buf]) == ("held", i + 1)
        for i in range(20):  # in flight when it dies
            buf = _filled(LARGE, seed=i)
            port.post_message(("hold", buf), [buf])
        del buf
        pid = handle.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await handle.wait()
    assert _settled() == (fds, memfds)


# -- dropped frames close their fds (nodes linked in memory) ---------------------------------


@asynccontextmanager
async def two_nodes() -> AsyncIterator[tuple[Node, Node, Any]]:
    async with trio.open_nursery() as nursery:
        a, b = Node(), Node()
        links = link_nodes(a, b, nursery)
        await trio.testing.wait_all_tasks_blocked()  # the routes are known
        yield a, b, links
        nursery.cancel_scope.cancel()


async def test_a_buffer_crosses_memory_links_as_an_fd() -> None:
    """Between nodes linked in memory a large buffer goes as an fd too (duplicated on the
    way, as a socket passes it), and arrives intact."""
    fds, memfds = _settled()
    async with two_nodes() as (a, b, _):
        port_a, port_b = bridge(a, b)
        buf = _filled(2 * MIB)
        digest = _digest(buf)
        port_a.post_message(("x", buf), [buf])
        _, got = (await port_b.receive()).data
        assert _digest(got) == digest
        assert buf.detached
        port_a.close()
        port_b.close()
        del got
    assert _settled() == (fds, memfds)


async def test_a_frame_for_a_closed_port_closes_its_fds() -> None:
    """A message that arrives for a port closed meanwhile is dropped with its fds."""
    fds, memfds = _settled()
    async with two_nodes() as (a, b, _):
        port_a, port_b = bridge(a, b)
        buf = _filled(2 * MIB)
        port_b.close()  # its CLOSE and the message below cross
        port_a.post_message(buf, [buf])
        del buf
        await trio.testing.wait_all_tasks_blocked()
        assert not b.ends
        port_a.close()
    assert _settled() == (fds, memfds)


async def test_a_frame_with_nowhere_to_go_closes_its_fds() -> None:
    """A frame for a node this one has no route to is dropped, and its fds closed."""
    fds, memfds = _settled()
    node = Node()
    buf = _filled(LARGE)
    payload, buffers, carried = node.pack(buf, (), None)
    assert buffers == [LARGE]
    assert carried is not None
    assert len(carried) == 1
    node.send(new_name(), USER, 1, 0, 1, payload, [], False, buffers, fds=carried)
    del buf, carried
    assert _settled() == (fds, memfds)


def _user_frame(
    node: Node, src: int, cid: int, seq: int, message: object
) -> tuple[bytes, Fds | None]:
    """A USER frame from `src` for end `(cid, 0)` of `node`, as `src` would send it."""
    sender = Node(src)
    payload, buffers, carried = sender.pack(message, (), None)
    fields: list[object] = [cid, 0, seq, payload, [], False]
    if buffers:
        fields.append(buffers)
    return frames.encode(node.name, src, USER, *fields), carried


async def test_duplicates_early_frames_and_a_lost_peer_close_their_fds() -> None:
    """An early frame is held with its fds and delivered in its turn; a duplicate's fds are
    closed; early frames still held when the peer's node is lost are closed."""
    fds, memfds = _settled()
    node, src, cid = Node(), new_name(), new_name()
    node.routes[src] = src  # a neighbour (whose link the test plays)
    core = PortCore(node.token)
    core.peer = RemoteEnd(node, core, cid, 0, src)
    port = MessagePort._create(core)
    bufs = {seq: _filled(LARGE, seed=seq) for seq in (1, 2, 3, 5)}
    digests = {seq: _digest(b) for seq, b in bufs.items()}
    frame_of = {seq: _user_frame(node, src, cid, seq, b) for seq, b in bufs.items()}

    def receive(frame: tuple[bytes, Fds | None]) -> None:
        node.receive(frame[0], src, frame[1])

    receive(frame_of[2])  # early
    receive(frame_of[5])  # early, and never in its turn
    assert _memfds() > memfds
    receive(frame_of[1])  # 1, then 2
    receive(_user_frame(node, src, cid, 1, _filled(LARGE, seed=9)))  # a duplicate
    got = [(await port.receive()).data for _ in range(2)]
    assert [_digest(b) for b in got] == [digests[1], digests[2]]
    receive(frame_of[3])
    got.append((await port.receive()).data)
    assert _digest(got[2]) == digests[3]
    node._lose({src}, came_from=None)  # the peer's node is gone: 5 never comes
    with pytest.raises(trio.EndOfChannel):
        await port.receive()
    port.close()
    del bufs, frame_of, got
    assert _settled() == (fds, memfds)


async def test_a_slot_ports_dropped_frames_close_their_fds() -> None:
    """A slot port kept here for a reader in another node (a `HomeEnd`) drops what node.py's
    rules drop, fds and all: a duplicate, a seq past the window (which ends the channel),
    and the early frame it held then. What came in turn is delivered whole."""
    fds, memfds = _settled()
    async with trio.open_nursery() as nursery:
        p, c = Node(), Node()
        _, up = link_nodes(p, c, nursery)
        await trio.testing.wait_all_tasks_blocked()  # the routes are known
        outside = MessageChannel()
        page = CursorPage()
        home = HomeEnd(p, outside.port2, c.name, page, SLOT)

        def send(seq: int, seed: int) -> None:  # from the reader's node, as it would
            up.send(*_user_frame(p, c.name, home.cid, seq, _filled(LARGE, seed=seed)))

        send(1, 1)
        send(1, 9)  # a duplicate
        send(3, 3)  # early: held, with its fd
        await trio.testing.wait_all_tasks_blocked()
        assert _digest((await outside.port1.receive()).data) == _digest(_filled(LARGE, seed=1))
        assert 3 in home.early
        send(EARLY_WINDOW + 5, 5)  # no honest reader sends it: the channel ends
        await trio.testing.wait_all_tasks_blocked()
        assert not home.early
        assert (home.cid, 0) not in p.ends
        outside.port1.close()
        page.close()
        nursery.cancel_scope.cancel()
    assert _settled() == (fds, memfds)


async def test_a_descriptor_refused_here_closes_its_fds_and_the_next_take_theirs() -> None:
    """A port arrives with two messages queued: the first carries a port that cannot be an
    end arriving here (it is here already) with a buffer in its own queue, the second a
    buffer. The first is a messageerror and its fd is closed; the second gets its own
    buffer (not the refused one's: the fds of a frame are taken in order); no fd is left."""
    fds, memfds = _settled()
    async with two_nodes() as (a, b, _):
        carrier_a, carrier_b = bridge(a, b)
        here_a, here_b = bridge(a, b)
        [(cid, end)] = [key for key in b.ends if b.ends[key].local is here_b._core]
        [(carrier_cid, carrier_end)] = [
            key for key in b.ends if b.ends[key].local is carrier_b._core
        ]
        carried = Fds()  # the frame's fds, in the order a would send them
        first, first_buffers, _ = a.pack(_filled(LARGE, seed=1), (), carried)
        second_buf = _filled(LARGE, seed=2)
        digest = _digest(second_buf)
        second, second_buffers, _ = a.pack(second_buf, (), carried)
        assert len(carried) == 2
        refused = [cid, end, a.name, 1, 1, [[0, first, [], first_buffers]], [], None]
        none = codec.encode(None, [])[0]
        queued = [[0, none, [refused]], [0, second, [], second_buffers]]
        moving = [0, 0, None, 1, 1, queued, [], None]  # a port whose peer is gone
        frame = frames.encode(
            b.name, a.name, USER, carrier_cid, carrier_end, 1, none, [moving], False
        )
        b.receive(frame, a.name, carried)
        [port] = (await carrier_b.receive()).ports
        assert (await port.receive()).type == "messageerror"
        assert _digest((await port.receive()).data) == digest
        with pytest.raises(trio.EndOfChannel):
            await port.receive()
        here_a.post_message("still here")
        assert (await here_b.receive()).data == "still here"
        for p in (carrier_a, carrier_b, here_a, here_b, port):
            p.close()
        await trio.testing.wait_all_tasks_blocked()
    del second_buf
    assert _settled() == (fds, memfds)


async def test_early_frames_move_with_their_port_and_keep_their_fds() -> None:
    """A port whose end holds an early frame (with a buffer) moves to another node: the
    frame goes with it, fds and all, and is delivered there in its turn."""
    fds, memfds = _settled()
    async with trio.open_nursery() as nursery:
        p, b, c = Node(), Node(), Node()
        link_nodes(p, b, nursery)
        link_nodes(p, c, nursery)
        await trio.testing.wait_all_tasks_blocked()
        port_p, port_b = bridge(p, b)
        [(cid, end)] = list(b.ends)
        buf = _filled(LARGE, seed=2)
        digest = _digest(buf)
        sender = Node(p.name)  # frames as p would send them
        payload, buffers, carried = sender.pack(buf, (), None)
        b.receive(
            frames.encode(b.name, p.name, USER, cid, end, 2, payload, [], False, buffers),
            p.name,
            carried,
        )
        assert b.ends[cid, end].early
        carrier_b, carrier_c = bridge(b, c)
        carrier_b.post_message("go", [port_b])
        moved = (await carrier_c.receive()).ports[0]
        port_p.post_message("first")  # seq 1, from p, which knows nothing of the move yet
        assert (await moved.receive()).data == "first"
        assert _digest((await moved.receive()).data) == digest
        for port in (port_p, moved, carrier_b, carrier_c):
            port.close()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    del buf, carried
    assert _settled() == (fds, memfds)


async def test_a_queued_buffer_moves_with_its_port_between_memory_nodes() -> None:
    """A buffer waiting in a port's queue goes with the port to another node, as an fd."""
    fds, memfds = _settled()
    async with two_nodes() as (a, b, _):
        carrier_a, carrier_b = bridge(a, b)
        channel = MessageChannel()
        buf = _filled(3 * MIB)
        digest = _digest(buf)
        channel.port1.post_message(buf, [buf])
        carrier_a.post_message("take it", [channel.port2])
        moved = (await carrier_b.receive()).ports[0]
        assert _digest((await moved.receive()).data) == digest
        for port in (channel.port1, moved, carrier_a, carrier_b):
            port.close()
        await trio.testing.wait_all_tasks_blocked()
    assert _settled() == (fds, memfds)


async def test_more_buffers_than_a_frame_carries_go_inline() -> None:
    """Past MAX_FDS buffers in one message, the others' bytes go in the frame."""
    async with two_nodes() as (a, b, _):
        port_a, port_b = bridge(a, b)
        bufs = [ArrayBuffer(LARGE) for _ in range(frames.MAX_FDS + 2)]
        for i, buf in enumerate(bufs):
            with buf.view() as view:
                view[0] = i % 256
        port_a.post_message(bufs, bufs)
        got = (await port_b.receive()).data
        assert [bytes(g)[0] for g in got] == [i % 256 for i in range(len(bufs))]
        port_a.close()
        port_b.close()


# -- hostile fds, from a peer on a real socket -------------------------------------------------


@asynccontextmanager
async def hostile_peer() -> AsyncIterator[tuple[Node, int, int, MessagePort, socket.socket]]:
    """This run's node linked by a socketpair to a peer the test plays (raw writes on the
    other socket), and a port here whose peer is end 1 of channel `cid` over there."""
    async with trio.open_nursery() as nursery:
        node = Node()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        peer = new_name()
        link = SocketLink(node, peer, ours)
        node.add_link(peer, link)
        nursery.start_soon(link.run)
        cid = new_name()
        core = PortCore(node.token)
        core.peer = RemoteEnd(node, core, cid, 0, peer)
        port = MessagePort._create(core)
        try:
            yield node, peer, cid, port, theirs
        finally:
            port.close()
            theirs.close()
            nursery.cancel_scope.cancel()


def _send_raw(
    sock: socket.socket, frame: bytes, fds: list[int], announced: int | None = None
) -> None:
    data = frames.framed(frame, len(fds) if announced is None else announced)
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    assert sock.sendmsg([data], rights) == len(data)


def _shared_payload() -> bytes:
    """The payload of a message that is one shared buffer."""
    shared: list[ArrayBuffer] = []
    payload, _ = codec.encode(ArrayBuffer(LARGE), [], shared, 1)
    assert len(shared) == 1
    return payload


def _bad_fd(kind: str) -> int:
    if kind == "pipe":
        r, w = os.pipe()
        os.close(w)
        return r
    fd = os.memfd_create("hostile", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, LARGE if kind == "unsealed" else 16)
    if kind == "short":
        import fcntl

        fcntl.fcntl(fd, 1033, shm.SEALS)  # F_ADD_SEALS
    return fd


@pytest.mark.parametrize("kind", ["pipe", "unsealed", "short"])
async def test_fds_that_are_not_sealed_memfds_make_a_messageerror(kind: str) -> None:
    """A peer sends, as a buffer, a pipe, a memfd not sealed against shrinking, or one
    shorter than announced: that message is a messageerror, the fd is closed, and the link
    stays up for what follows."""
    fds, memfds = _settled()
    async with hostile_peer() as (node, peer, cid, port, theirs):
        payload = _shared_payload()
        bad = _bad_fd(kind)
        frame = frames.encode(node.name, peer, USER, cid, 0, 1, payload, [], False, [LARGE])
        _send_raw(theirs, frame, [bad])
        os.close(bad)  # the node has its own now
        event = await port.receive()
        assert event.type == "messageerror"
        good = _filled(LARGE, seed=4)
        exported = shm.export(good)
        assert exported is not None
        frame = frames.encode(node.name, peer, USER, cid, 0, 2, payload, [], False, [LARGE])
        with exported:
            _send_raw(theirs, frame, [exported.fd])
        arrived = (await port.receive()).data
        assert arrived.byte_length == LARGE
        del arrived
    assert _settled() == (fds, memfds)


@pytest.mark.parametrize("announced", [0, 2])
async def test_fds_a_frame_does_not_announce_break_the_link(announced: int) -> None:
    """A frame that comes with more fds than its header announces (or fewer) breaks the
    protocol: the link is dropped (the port here gets its close) and the fds are closed."""
    fds, memfds = _settled()
    async with hostile_peer() as (node, peer, cid, port, theirs):
        r, w = os.pipe()
        frame = frames.encode(node.name, peer, USER, cid, 0, 1, b"\xc0", [], False)
        _send_raw(theirs, frame, [r], announced=announced)
        os.close(r)
        os.close(w)
        if announced == 0:  # the frame itself, which said nothing of its fd, comes first
            assert (await port.receive()).data is None
        with pytest.raises(trio.EndOfChannel):
            await port.receive()
        assert peer not in node.links
    assert _settled() == (fds, memfds)


async def test_fds_beyond_what_a_message_says_are_closed_and_too_few_is_a_messageerror() -> None:
    """A frame whose header announces its fds truly, but whose message names fewer buffers
    than came (the others are closed) or more (a messageerror), or that is not a message at
    all (an ACK with an fd): nothing is kept, and the link stays up."""
    fds, memfds = _settled()
    async with hostile_peer() as (node, peer, cid, port, theirs):
        payload = _shared_payload()

        def exported() -> shm.ExportedBuffer:
            e = shm.export(_filled(LARGE))
            assert e is not None
            return e

        r, w = os.pipe()
        with exported() as one:  # one buffer named, two fds
            frame = frames.encode(node.name, peer, USER, cid, 0, 1, payload, [], False, [LARGE])
            _send_raw(theirs, frame, [one.fd, r])
        assert (await port.receive()).data.byte_length == LARGE
        with exported() as one:  # two buffers named, one fd
            buffers = [LARGE, LARGE]
            frame = frames.encode(node.name, peer, USER, cid, 0, 2, payload, [], False, buffers)
            _send_raw(theirs, frame, [one.fd])
        assert (await port.receive()).type == "messageerror"
        _send_raw(theirs, frames.encode(node.name, peer, frames.ACK, cid, 0, 1), [r, w])
        os.close(r)
        os.close(w)
        with exported() as one:
            frame = frames.encode(node.name, peer, USER, cid, 0, 3, payload, [], False, [LARGE])
            _send_raw(theirs, frame, [one.fd])
        assert (await port.receive()).data.byte_length == LARGE
    assert _settled() == (fds, memfds)


# -- the routing fuzzer, with a buffer in every message ----------------------------------------


def spread_programs() -> st.SearchStrategy[list[tuple[str, int, int, int]]]:
    """Programs of `test_wire_routes` that first send every end to a node of its own choice,
    then post (every message with a buffer), move and close, with few pauses: so frames take
    two paths after a move and come early, some reach ends closed meanwhile, and a lost node
    strands some on the way."""
    ends = [(c, side) for c in range(routes.CHANNELS) for side in (0, 1)]
    spread = st.tuples(*(st.integers(0, routes.NODES - 1) for _ in ends)).map(
        lambda targets: [
            op
            for (c, side), target in zip(ends, targets, strict=True)
            for op in (("move", c, side, target), ("land", c, side, 0))
        ]
    )
    op = st.tuples(
        st.sampled_from(["post"] * 5 + ["move"] * 3 + ["land"] * 2 + ["close", "settle"]),
        st.integers(0, routes.CHANNELS - 1),
        st.integers(0, 1),
        st.integers(0, routes.NODES - 1),
    )
    return st.builds(lambda a, b: a + b, spread, st.lists(op, max_size=30))


@settings(
    max_examples=routes.EXAMPLES // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spread_programs(), st.one_of(st.none(), st.integers(1, routes.NODES - 1)))
def test_buffers_on_moving_ends_arrive_whole_and_leave_no_fd(
    program: list[tuple[str, int, int, int]], kill: int | None
) -> None:
    """The routing fuzzer's programs, every message with a buffer that goes as an fd: each
    direction delivers what was posted, in order, every buffer whole; and when it is over no
    fd is left open, whatever was dropped on the way."""
    before = routes.fd_count()
    clock = trio.testing.MockClock(autojump_threshold=0)
    world = trio.run(routes.run, program, kill, 1, clock=clock)
    routes.check(world, kill)
    del world
    assert routes.fd_count(before) == before
