"""Bad input from another node is contained (issue 12, "Bad input is contained").

Garbage at each layer: random bytes to the frame reader and decoder; frames of random
msgpack to a node from a neighbour; well-formed frames whose payload or ports are garbage;
absurd sequence numbers; lies about routes; a real socket link fed raw bytes; a real child
process that speaks garbage. A node either handles a frame or raises `FrameError`, and then
its link drops the neighbour with one log line, as if it had died; nothing else escapes,
nothing hangs, and channels through other links go on working.

The tree of the node tests: P, with two children C (the one that sends garbage) and D (an
honest one), and G, C's child.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog.testing
import trio
import trio.testing
from _garbage_child import echo
from _helpers import close_ports
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import actors
from actors import MessageChannel, MessagePort, ProcessDiedError, Restart
from actors._process.link import SocketLink
from actors._queue import PortCore
from actors._wire import codec, frames
from actors._wire.frames import (
    ACK,
    BYE,
    CLOSE,
    DONE,
    HEADER,
    LOST,
    MAX_FDS,
    MAX_FRAME,
    MAX_NESTING,
    MOVED,
    MOVED_ACK,
    NODE_LOST,
    REHOMED,
    ROUTES,
    USER,
    USERS,
    FrameError,
    Reader,
    framed,
)
from actors._wire.home import SLOT, CursorPage, HomeEnd
from actors._wire.memory import bridge, link_nodes
from actors._wire.node import EARLY_WINDOW, Node, RemoteEnd

EXAMPLES = int(os.environ.get("ACTORS_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

P, C, D, G = 0x7001, 0x7002, 0x7003, 0x7004  # node names
STRANGER = 0x7777  # a node nobody knows
CID_PC, CID_PG, CID_CD = 0x5001, 0x5002, 0x5003  # channels the garbage may name
_pack = msgspec.msgpack.encode


def frame(dst: int, src: int, kind: int, *fields: object) -> bytes:
    return _pack([dst, src, kind, *fields])


def payload(value: object) -> bytes:
    return codec.encode(value, [])[0]


def descriptor(cid: int, end: int = 0, location: int | None = C, **kw: Any) -> list[Any]:
    """A port descriptor: an end `(cid, end)` whose peer is at `location`."""
    d = {"send": 1, "recv": 1, "queued": [], "early": [], "closing": None, **kw}
    return [cid, end, location, d["send"], d["recv"], d["queued"], d["early"], d["closing"]]


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


# -- the frame layer: bytes ---------------------------------------------------------------


def _decodes_or_refuses(data: bytes) -> list[Any] | None:
    try:
        fields = frames.decode(data)
    except FrameError as exc:
        error = exc
    else:
        assert type(fields) is list
        assert fields[2] in frames.KINDS
        assert all(type(fields[i]) is int for i in range(3))
        return fields
    assert error.__cause__ is None  # refused as garbage, not by an error of ours
    return None


@given(st.binary(max_size=64))
def test_random_bytes_are_a_frame_or_a_frame_error(data: bytes) -> None:
    """`decode` of any bytes returns a frame's fields or raises FrameError, nothing else."""
    _decodes_or_refuses(data)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=4)
    | st.binary(max_size=8)
)
ANY = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(ANY)
def test_random_msgpack_is_a_frame_or_a_frame_error(value: object) -> None:
    """Any msgpack value is either a frame or a FrameError."""
    _decodes_or_refuses(_pack(value))


@given(
    st.integers(-2, 12) | st.sampled_from([1.0, True, "1", None]),
    st.lists(ANY, max_size=8),
)
def test_a_header_with_random_fields_is_a_frame_or_a_frame_error(
    kind: object, rest: list[Any]
) -> None:
    """A frame's header, then anything: a frame of that kind's shape, or a FrameError."""
    fields = _decodes_or_refuses(_pack([P, C, kind, *rest]))
    if fields is not None:
        assert type(kind) is int
        assert kind in frames.KINDS


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ([P, C, 1.0, CID_PC, 0, 1, b"", [], False], "a kind that is a float"),
        ([P, C, True, CID_PC, 0, 1, b"", [], False], "a kind that is a bool"),
        ([P, C, [1], CID_PC, 0, 1, b"", [], False], "a kind that is an array"),
        ([P, C, 99], "an unknown kind"),
        ([P, C, USER, CID_PC, 0, 1, b"", []], "a USER frame without ask"),
        ([P, C, USER, CID_PC, 0, 1, b"", [], False, 0], "buffers that are not an array"),
        ([P, C, USER, CID_PC, 0, 1, b"", [], False, []], "buffers, none of them"),
        ([P, C, USER, CID_PC, 0, 1, b"", [], False, [-1]], "a buffer's length below 0"),
        ([P, C, USER, CID_PC, 0, 1, b"", [], False, [1.0]], "a buffer's length a float"),
        ([P, C, USER, CID_PC, 0, 1, b"", [], False, [True]], "a buffer's length a bool"),
        ([P, C, USER, CID_PC, 0, 1, b"", [], False, [1] * (MAX_FDS + 1)], "too many buffers"),
        ([P, C, USER, CID_PC, 0, 1, b"", [], False, [1], 0], "a USER frame with a field more"),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [descriptor(9, queued=[[0, b"", [], []]])], False],
            "a queued message's buffers, none of them",
        ),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [descriptor(9, queued=[[0, b"", [], 5]])], False],
            "a queued message's buffers not an array",
        ),
        (
            [
                P,
                C,
                USER,
                CID_PC,
                0,
                1,
                b"",
                [descriptor(9, early=[[2, b"", [], True, [1]]])],
                False,
            ],
            "an early message with buffers and no fd count",
        ),
        (
            [
                P,
                C,
                USER,
                CID_PC,
                0,
                1,
                b"",
                [descriptor(9, early=[[2, b"", [], True, [], -1]])],
                False,
            ],
            "an early message's fd count below 0",
        ),
        ([P, C, USER, CID_PC, 2, 1, b"", [], False], "an end that is neither 0 nor 1"),
        ([P, C, USER, CID_PC, True, 1, b"", [], False], "an end that is a bool"),
        ([P, C, USER, CID_PC, 0, 1, "text", [], False], "a payload that is str"),
        ([P, C, USER, CID_PC, 0, 1.5, b"", [], False], "a seq that is a float"),
        ([P, C, USER, CID_PC, 0, 1, b"", [[1, 2]], False], "a descriptor too short"),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [descriptor(9, queued=[[3, b"", []]])], False],
            "a queued kind 3",
        ),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [descriptor(9, early=[[2, b"", [], 1]])], False],
            "ask that is an int",
        ),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [[*descriptor(9), "c"]], False],
            "a cursor that is a str",
        ),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [[*descriptor(9), 0, None]], False],
            "asked that is nil",
        ),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [[*descriptor(9), 0, 0, 0]], False],
            "a descriptor too long",
        ),
        ([P, C, CLOSE, CID_PC, 0], "a CLOSE without last"),
        ([P, C, MOVED, CID_PC, 0, None, C, 1], "a MOVED to nil"),
        ([P, C, MOVED, CID_PC, 0, D, C], "a MOVED without its move number"),
        ([P, C, MOVED_ACK, CID_PC, 0, 3], "a MOVED_ACK without its move and forward"),
        ([P, C, MOVED_ACK, CID_PC, 0, 3, 1, None], "a MOVED_ACK for a forward at nil"),
        ([P, C, DONE, CID_PC, 0], "a DONE without its move number"),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [[*descriptor(9), None, 0, 1, 0]], False],
            "a descriptor with moves but not the forwards they left",
        ),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [[*descriptor(9), None, 0, 1, 0, [[1, C]]]], False],
            "a forward left behind that is not [hops, node, last]",
        ),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [[*descriptor(9), None, 0, "1", 0, []]], False],
            "a move number that is a str",
        ),
        ([P, C, ROUTES, [C, "G"]], "a route that is not a name"),
        ([P, C, NODE_LOST, C], "lost nodes that are not an array"),
        ([P, C, BYE, 0], "a BYE with a field"),
        ([P, C, USERS, CID_PC, 0, 1, [], []], "a USERS frame of no message"),
        ([P, C, USERS, CID_PC, 0, 1, [b"", "text"], []], "a USERS payload that is str"),
        ([P, C, USERS, CID_PC, 0, 1, [b""], [1]], "an ask past the payloads"),
        ([P, C, USERS, CID_PC, 0, 1, [b""], [-1]], "an ask below 0"),
        ([P, C, USERS, CID_PC, 0, 1, [b""], [True]], "an ask that is a bool"),
        ([P, C, USERS, CID_PC, 0, 1, [b""], False], "asks that are not an array"),
        ([P, C, USERS, CID_PC, 2, 1, [b""], []], "a USERS end that is neither 0 nor 1"),
        ([P, C, USERS, CID_PC, 0, 1, [b""]], "a USERS frame without asks"),
        ([P, C, USERS, CID_PC, 0, 1, [b""], [], 0], "a USERS frame with a field more"),
    ],
)
def test_fields_of_the_wrong_shape_are_a_frame_error(fields: list[Any], why: str) -> None:
    """Each kind has its fields, of their types; anything else is not a frame."""
    with pytest.raises(FrameError):
        frames.decode(_pack(fields))


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ([P, C, USER, CID_PC, 0, 1, b"", [], False, [1 << 20]], "a shared buffer"),
        ([P, C, USER, CID_PC, 0, 1, b"", [], False, [0] * MAX_FDS], "as many as a frame takes"),
        (
            [P, C, USER, CID_PC, 0, 1, b"", [descriptor(9, queued=[[0, b"", [], [7, 8]]])], False],
            "a queued message with buffers",
        ),
        (
            [
                P,
                C,
                USER,
                CID_PC,
                0,
                1,
                b"",
                [descriptor(9, early=[[2, b"", [], True, [], 3]])],
                False,
            ],
            "an early message with fds (its ports' messages')",
        ),
    ],
)
def test_the_fields_of_shared_buffers_are_a_frame(fields: list[Any], why: str) -> None:
    """A USER frame's buffers, a queued message's, an early message's and its fd count."""
    assert list(frames.decode(_pack(fields))) == fields


def _user_field(i: int) -> st.SearchStrategy[Any]:
    plausible = [
        st.just(P),
        st.just(C),
        st.just(USER),
        st.integers(0, 2**64 - 1),
        st.sampled_from([0, 1]),
        st.integers(-(2**63), 2**64 - 1),
        st.binary(max_size=4),
        st.lists(st.just(descriptor(9)), max_size=1),
        st.booleans(),
        st.lists(st.integers(-1, 2**64 - 1) | st.booleans(), max_size=3),
    ][i]
    return st.sampled_from([True] * 6 + [False]).flatmap(lambda ok: plausible if ok else SCALARS)


@given(
    st.tuples(*(_user_field(i) for i in range(9))),
    st.just(()) | st.tuples(_user_field(9)),
)
def test_a_user_frame_is_checked_the_same_in_either_array_form(
    fields: tuple[Any, ...], buffers: tuple[Any, ...]
) -> None:
    """USER frames (with shared buffers or without) are checked as msgspec decodes them when
    their array has the one-byte head msgspec writes, and field by field otherwise: the two
    ways agree."""
    fields = (*fields, *buffers)
    body = b"".join(_pack(v) for v in fields)
    outcomes = []
    for head in (bytes([0x90 + len(fields)]), b"\xdc\x00" + bytes([len(fields)])):
        try:
            outcomes.append(list(frames.decode(head + body)))
        except FrameError:
            outcomes.append(None)
    assert outcomes[0] == outcomes[1]
    event("a frame" if outcomes[0] is not None else "not a frame")


@given(
    st.sampled_from([USERS, MOVED, MOVED_ACK]) | st.integers(0, 13),
    st.tuples(
        st.integers(0, 2**64 - 1) | st.booleans(),
        st.sampled_from([0, 1, 2]),
        st.integers(-(2**63), 2**64 - 1),
        st.lists(st.binary(max_size=3) | st.text(max_size=1), max_size=3) | SCALARS,
        st.lists(st.integers(-1, 3) | st.booleans(), max_size=3) | SCALARS,
    ),
)
def test_a_users_frame_is_checked_the_same_in_either_array_form(
    kind: int, fields: tuple[Any, ...]
) -> None:
    """Arrays of eight (USERS, and MOVED and MOVED_ACK, which share their head byte) are
    checked the same whether msgspec's typed decoder or the field-by-field check sees them."""
    values = (P, C, kind, *fields)
    body = b"".join(_pack(v) for v in values)
    outcomes = []
    for head in (b"\x98", b"\xdc\x00\x08"):
        try:
            outcomes.append(list(frames.decode(head + body)))
        except FrameError:
            outcomes.append(None)
    assert outcomes[0] == outcomes[1]
    event("a frame" if outcomes[0] is not None else "not a frame")


def test_nesting_too_deep_is_a_frame_error() -> None:
    """msgpack nested past the decoder's depth, and descriptors nested past MAX_NESTING."""
    with pytest.raises(FrameError):
        frames.decode(b"\x91" * 100_000 + b"\x00")
    nested: list[Any] = []
    for _ in range(MAX_NESTING):
        nested = [descriptor(9, queued=[[0, b"", nested]])] if nested else [descriptor(9)]
    frames.decode(_pack([P, C, USER, CID_PC, 0, 1, b"", nested, False]))
    deeper = [descriptor(9, queued=[[0, b"", nested]])]
    with pytest.raises(FrameError):
        frames.decode(_pack([P, C, USER, CID_PC, 0, 1, b"", deeper, False]))


@given(
    st.lists(st.binary(max_size=40), max_size=6),
    st.lists(st.integers(1, 30), min_size=1, max_size=20),
)
def test_the_reader_finds_frames_however_the_stream_is_cut(
    bodies: list[bytes], cuts: list[int]
) -> None:
    """Frames split anywhere come out whole and in order; nothing is left pending."""
    stream = b"".join(framed(body) for body in bodies)
    reader, got, i = Reader(), [], 0
    while i < len(stream):
        for cut in cuts:
            for body, fds in reader.feed(stream[i : i + cut]):
                assert fds == 0
                got.append(body)
            i += cut
    assert got == bodies
    assert reader.pending == 0


@given(st.lists(st.binary(max_size=24), max_size=8))
def test_random_bytes_to_the_reader_are_frames_or_a_frame_error(chunks: list[bytes]) -> None:
    """A reader fed anything gives frames, or a FrameError for a length or an fd count over
    the limit."""
    reader = Reader()
    error = None
    try:
        for chunk in chunks:
            for body, fds in reader.feed(chunk):
                assert len(body) <= MAX_FRAME
                assert fds <= MAX_FDS
    except FrameError as exc:
        error = exc
    assert error is None or "over the limit" in str(error)


def test_a_length_over_the_limit_is_refused_before_its_bytes_come() -> None:
    """The reader refuses a frame longer than MAX_FRAME, or announcing more than MAX_FDS fds,
    as soon as it reads the header."""
    reader = Reader()
    assert list(reader.feed(HEADER.pack(MAX_FRAME, MAX_FDS) + b"x")) == []  # at the limits: waits
    for length, fds in ((MAX_FRAME + 1, 0), (0, MAX_FDS + 1)):
        reader = Reader()
        assert list(reader.feed(HEADER.pack(length, fds)[:7])) == []
        with pytest.raises(FrameError, match="over the limit"):
            list(reader.feed(HEADER.pack(length, fds)[7:]))


# -- the node: a tree with a garbage child ------------------------------------------------


def channel(a: Node, b: Node, cid: int) -> tuple[MessagePort, MessagePort]:
    """A channel with the id `cid`, its first end on `a` and its second on `b`."""
    core_a, core_b = PortCore(a.token), PortCore(b.token)
    core_a.peer = RemoteEnd(a, core_a, cid, 0, b.name)
    core_b.peer = RemoteEnd(b, core_b, cid, 1, a.name)
    return MessagePort._create(core_a), MessagePort._create(core_b)


class Tree:
    """P with children C and D, and G under C; channels P-C, P-G and C-D the garbage may
    name, and P-D that it cannot (its id is random)."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.p, self.c, self.d, self.g = (Node(name) for name in (P, C, D, G))
        self.pc = link_nodes(self.p, self.c, nursery)
        self.pd = link_nodes(self.p, self.d, nursery)
        self.cg = link_nodes(self.c, self.g, nursery)
        self.ports: list[MessagePort] = []

    async def start(self) -> None:
        await trio.testing.wait_all_tasks_blocked()  # the routes are known
        self.p_c, self.c_p = self.keep(*channel(self.p, self.c, CID_PC))
        self.p_g, self.g_p = self.keep(*channel(self.p, self.g, CID_PG))
        self.c_d, self.d_c = self.keep(*channel(self.c, self.d, CID_CD))
        self.p_d, self.d_p = self.keep(*bridge(self.p, self.d))

    def keep(self, *ports: MessagePort) -> tuple[MessagePort, ...]:
        self.ports += ports
        return ports

    def from_c(self, data: bytes) -> None:
        """`data` arrives at P from C, as if C's node had sent it."""
        self.pc[1].send(data)

    @property
    def c_link_up(self) -> bool:
        return C in self.p.links

    async def check_healthy(self) -> None:
        """P and D still talk, over a channel they had and a new one, and a port moved from
        P to D works."""
        assert D in self.p.links
        assert P in self.d.links
        self.p_d.post_message("ping")
        assert (await self.d_p.receive()).data == "ping"
        self.d_p.post_message("pong")
        assert (await self.p_d.receive()).data == "pong"
        at_p, at_d = self.keep(*bridge(self.p, self.d))
        moving = MessageChannel()
        at_p.post_message("take", [moving.port2])
        moved = (await at_d.receive()).ports[0]
        self.keep(moving.port1, moved)
        moved.post_message("from D")
        assert (await moving.port1.receive()).data == "from D"

    async def check_lost(self, *ports: MessagePort) -> None:
        """Each port's next events end with its close (the node of its peer is lost)."""
        for port in ports:
            with trio.fail_after(5):
                while True:
                    try:
                        event = await port.receive()
                    except trio.EndOfChannel:
                        break
                    close_ports(event.ports)

    def close(self) -> None:
        close_ports(self.ports)


@asynccontextmanager
async def tree() -> AsyncIterator[Tree]:
    async with trio.open_nursery() as nursery:
        t = Tree(nursery)
        await t.start()
        try:
            yield t
        finally:
            t.close()
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()


def run(test: Callable[[], Any]) -> None:
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


# Frames of random msgpack: mostly values that mean something here (the nodes' names, the
# channels' ids, sequence numbers near the edges), sometimes anything at all.
INTS = st.sampled_from(
    [
        0,
        1,
        2,
        3,
        -1,
        128,
        EARLY_WINDOW,
        EARLY_WINDOW + 2,
        10**9,
        2**62,
        2**63 - 1,
        2**64 - 1,
        -(2**63),
    ]
) | st.integers(-2, 20)
NAMES = st.sampled_from([P, C, D, G, STRANGER])
CIDS = st.sampled_from([CID_PC, CID_PG, CID_CD, 0x5999])
ENDS = st.sampled_from([0, 1])
PAYLOADS = st.binary(max_size=12) | st.sampled_from(
    [payload(v) for v in (0, "x", [1, 2], {"a": None})]
)


WRONG = SCALARS | st.lists(SCALARS, max_size=3)  # cheaper to draw than ANY


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly `strategy`, now and then (one time in twenty) a value of another type."""
    return st.sampled_from([True] * 19 + [False]).flatmap(lambda ok: strategy if ok else WRONG)


def as_list(*parts: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(*parts).map(list)


DESCRIPTOR: st.SearchStrategy[list[Any]] = st.deferred(
    lambda: st.tuples(
        as_list(
            maybe(CIDS),
            maybe(ENDS),
            maybe(st.none() | NAMES),
            maybe(INTS),
            maybe(INTS),
            st.lists(QUEUED, max_size=2),
            st.lists(EARLY, max_size=1),
            maybe(st.none() | INTS),
        ),
        st.just([])  # or with its moves: a cursor, asks, and the forwards its moves left
        | as_list(
            maybe(st.none() | INTS),
            maybe(INTS),
            maybe(INTS),
            maybe(INTS),
            st.lists(as_list(maybe(INTS), maybe(NAMES), maybe(INTS)), max_size=2),
        ),
    ).map(lambda parts: parts[0] + parts[1])
)
QUEUED = as_list(
    maybe(st.sampled_from([0, 1, 2])), maybe(PAYLOADS), st.lists(DESCRIPTOR, max_size=1)
)
EARLY = as_list(maybe(INTS), PAYLOADS, st.lists(DESCRIPTOR, max_size=1), maybe(st.booleans()))
FIELDS = {  # (`garbage_frames` puts a value of another type in one of them, now and then)
    USER: as_list(CIDS, ENDS, INTS, PAYLOADS, st.lists(DESCRIPTOR, max_size=2), st.booleans()),
    USERS: as_list(
        CIDS, ENDS, INTS, st.lists(PAYLOADS, min_size=1, max_size=3), st.lists(INTS, max_size=2)
    ),
    CLOSE: as_list(CIDS, ENDS, INTS),
    MOVED: as_list(CIDS, ENDS, NAMES, NAMES, INTS),
    MOVED_ACK: as_list(CIDS, ENDS, INTS, INTS, NAMES),
    DONE: as_list(CIDS, ENDS, INTS),
    ACK: as_list(CIDS, ENDS, INTS),
    LOST: as_list(CIDS, ENDS),
    REHOMED: as_list(CIDS, ENDS, NAMES, INTS),
    ROUTES: as_list(st.lists(maybe(NAMES), max_size=3)),
    NODE_LOST: as_list(st.lists(maybe(NAMES), max_size=3)),
    BYE: st.just([]),
}
DST = st.sampled_from([P, P, P, P, P, P, D, D, C, G, STRANGER])
SRC = st.sampled_from([C, C, C, G])


@st.composite
def garbage_frames(draw: st.DrawFn) -> bytes:
    """Mostly frames a node could send, from C or G to P or through it; some with a field of
    another type or another sender, some cut short or too long, some mere bytes."""
    damage = draw(st.sampled_from(["none"] * 14 + ["bytes", "type", "type", "type", "cut", "more"]))
    if damage == "bytes":
        return draw(st.binary(max_size=24))
    kind = draw(st.sampled_from([USER] * 4 + sorted(FIELDS)))
    fields = [draw(DST), draw(SRC), kind, *draw(FIELDS[kind])]
    if damage == "type":
        fields[draw(st.integers(0, len(fields) - 1))] = draw(WRONG | NAMES)
    elif damage == "cut":
        fields = fields[: draw(st.integers(0, len(fields) - 1))]
    elif damage == "more":
        fields += draw(st.lists(WRONG, min_size=1, max_size=2))
    return _pack(fields)


def moved(port: MessagePort) -> bool:
    """Whether `port` still has a peer on another node after C was lost: the garbage moved
    it away from C's subtree (a node that knows a channel's id can)."""
    core = port._core
    return core is not None and isinstance(core.peer, RemoteEnd)


def _no_bug(logs: list[dict[str, Any]]) -> None:
    assert not events(logs, "frame_failed"), events(logs, "frame_failed")


@FUZZ
@given(st.lists(garbage_frames(), min_size=1, max_size=8))
def test_garbage_from_a_child_leaves_the_rest_of_the_tree_working(garbage: list[bytes]) -> None:
    """Frames of random msgpack from C: P handles them or drops C (one log line, its ports
    closed as if it died); either way P and D go on talking."""

    async def main() -> None:
        with structlog.testing.capture_logs() as logs:
            async with tree() as t:
                handled = 0
                for data in garbage:
                    t.from_c(data)
                    await trio.testing.wait_all_tasks_blocked()
                    if not t.c_link_up:
                        break
                    handled += 1
                # (what the garbage reached: --hypothesis-show-statistics)
                event(f"frames handled before the link dropped (or not): {min(handled, 3)}+")
                event(f"channels broken: {len(events(logs, 'channel_broken'))}")
                for e in events(logs, "link_broken"):
                    event("dropped: " + e["reason"].split(":")[0][:40])
                _no_bug(logs)
                broken = [e["node"] for e in events(logs, "link_broken")]
                assert broken == ([] if t.c_link_up else [P])  # one line, and only at P
                await t.check_healthy()
                if not t.c_link_up:
                    for node in (t.p, t.d):
                        assert not any(e.location in (C, G) for e in node.ends.values())
                    # What C's garbage could do to the channels it knows the ids of (move
                    # their peers elsewhere, say), it may have done: the others close.
                    await t.check_lost(*(p for p in (t.p_c, t.p_g, t.d_c) if not moved(p)))

    run(main)


@FUZZ
@given(st.lists(PAYLOADS | st.binary(max_size=40), min_size=1, max_size=6))
def test_a_payload_that_does_not_decode_is_a_messageerror_and_the_link_stays(
    payloads: list[bytes],
) -> None:
    """Well-formed USER frames whose payloads are anything: each is a message or a
    messageerror at its port, in order, and what comes after still arrives."""

    async def main() -> None:
        async with tree() as t:
            sender = t.c_p._core
            assert sender is not None
            assert isinstance(sender.peer, RemoteEnd)
            for data in payloads:
                sender.peer.send(data, [], [], None)
            remote = sender.peer  # and the same payloads again, in one USERS frame
            first = remote.send_seq
            remote.send_seq += len(payloads)
            t.from_c(frame(P, C, USERS, remote.cid, 1 - remote.end, first, payloads, [0]))
            t.c_p.post_message("after")
            for data in payloads * 2:
                event = await t.p_c.receive()
                try:
                    expected = codec.decode(data, ())
                except codec.DecodeError:
                    assert event.type == "messageerror"
                else:
                    assert event.type == "message"
                    assert event.data == expected
            assert (await t.p_c.receive()).data == "after"
            assert t.c_link_up

    run(main)


# -- the node: each rule, by example ------------------------------------------------------


def waiting_at_c(t: Tree, cid: int) -> MessagePort:
    """C's end `(cid, 1)` of a channel whose other end is on its way to P."""
    core = PortCore(t.c.token)
    core.peer = RemoteEnd(t.c, core, cid, 1, P)
    return t.keep(MessagePort._create(core))[0]


async def test_ports_that_cannot_be_adopted_make_a_messageerror(logs: list[Any]) -> None:
    """A descriptor that cannot be an end arriving at P (its end is at P already, sequence
    numbers out of range, a close in mid-queue, an ask out of range) makes its message a
    messageerror; the other ports of that message close, so their peers hear of it; the link
    stays."""
    async with tree() as t:
        refused = [
            descriptor(CID_PC, 0),  # P's own end of P-C
            descriptor(0x6001, send=0),
            descriptor(0x6002, recv=2**62),
            descriptor(0x6003, early=[[1, b"", [], False]]),  # not after the next due
            descriptor(0x6004, early=[[2, b"", [], False], [2, b"", [], False]]),
            descriptor(0x6005, recv=5, closing=3),
            descriptor(0x6006, location=None, queued=[[2, b"", []], [0, payload(1), []]]),
            [*descriptor(0x6007), None, 2**62],  # asks to hear of a seq out of range
            [*descriptor(0x6008), None, -1],
        ]
        peers = []
        for seq, bad in enumerate(refused, start=1):
            before, after = 0x6100 + 2 * seq, 0x6101 + 2 * seq
            peers += [waiting_at_c(t, before), waiting_at_c(t, after)]
            ports = [descriptor(before), bad, descriptor(after)]
            t.from_c(frame(P, C, USER, CID_PC, 0, seq, payload([0, 1, 2]), ports, False))
        after = len(refused) + 1
        t.from_c(frame(P, C, USER, CID_PC, 0, after, payload("after"), [descriptor(0x6400)], False))
        for _ in refused:
            assert (await t.p_c.receive()).type == "messageerror"
        event = await t.p_c.receive()
        assert event.data == "after"
        assert len(t.keep(*event.ports)) == 1
        await t.check_lost(*peers)
        assert not events(logs, "channel_broken")
        assert not events(logs, "link_broken")
        assert t.p.ends[CID_PC, 0].local is t.p_c._core  # P's end of P-C is untouched
        await t.check_healthy()


async def test_ports_nested_as_deep_as_a_frame_allows_arrive(logs: list[Any]) -> None:
    """A port in a message queued at a port in a message ... MAX_NESTING deep is adopted at
    P: the message arrives, and P's stack holds."""
    async with tree() as t:
        nested: list[Any] = []
        for _ in range(MAX_NESTING):
            nested = [descriptor(9, location=None, queued=[[0, payload(0), nested]])]
        t.from_c(frame(P, C, USER, CID_PC, 0, 1, payload(0), nested, False))
        event = await t.p_c.receive()
        t.keep(*event.ports)
        assert event.type == "message"
        assert len(event.ports) == 1
        assert not events(logs, "frame_failed")
        assert t.c_link_up


async def test_a_port_arrives_with_its_queue_early_messages_and_close() -> None:
    """A descriptor whose end has messages queued, one that came early and a close after it:
    the port gets the queue, then the next message when it comes, the early one, the close."""
    async with tree() as t:
        moving = descriptor(
            0x6500,
            0,
            send=1,
            recv=2,
            queued=[[0, payload("queued"), []], [1, b"", []]],
            early=[[3, payload("early"), [], False]],
            closing=3,
        )
        t.from_c(frame(P, C, USER, CID_PC, 0, 1, payload([0]), [moving], False))
        port = t.keep(*(await t.p_c.receive()).ports)[0]
        t.from_c(frame(P, C, USER, 0x6500, 0, 2, payload("next"), [], False))
        got = [await port.receive() for _ in range(4)]
        assert [(e.type, e.data) for e in got] == [
            ("message", "queued"),
            ("messageerror", None),
            ("message", "next"),
            ("message", "early"),
        ]
        with pytest.raises(trio.EndOfChannel):
            await port.receive()
        assert (0x6500, 0) not in t.p.ends


async def test_a_sequence_number_out_of_the_window_breaks_its_channel(logs: list[Any]) -> None:
    """Messages ahead of their turn wait (up to EARLY_WINDOW ahead); a seq past the window, or
    below 1, closes that channel at both ends after what arrived, with one log line; a repeated
    seq is dropped; the link and its other channels go on."""
    async with tree() as t:

        def user(seq: int, data: object) -> None:
            t.from_c(frame(P, C, USER, CID_PC, 0, seq, payload(data), [], False))

        user(3, "third")
        user(2, "second")
        user(1 + EARLY_WINDOW, "last in the window")
        await trio.testing.wait_all_tasks_blocked()
        end = t.p.ends[CID_PC, 0]
        assert sorted(end.early) == [2, 3, 1 + EARLY_WINDOW]
        assert end.recv_seq == 1
        user(1, "first")
        user(1, "first, again")
        user(3, "third, again")
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(end.early) == [1 + EARLY_WINDOW]
        assert end.recv_seq == 4
        assert not events(logs, "channel_broken")
        user(4 + EARLY_WINDOW + 1, "past the window")
        assert [(await t.p_c.receive()).data for _ in range(3)] == ["first", "second", "third"]
        with pytest.raises(trio.EndOfChannel):
            await t.p_c.receive()
        with pytest.raises(trio.EndOfChannel):
            await t.c_p.receive()  # C was told
        assert len(events(logs, "channel_broken")) == 1
        t.from_c(frame(P, G, USER, CID_PG, 0, -1, payload("negative"), [], False))
        with pytest.raises(trio.EndOfChannel):
            await t.p_g.receive()
        assert len(events(logs, "channel_broken")) == 2
        assert t.c_link_up
        assert not events(logs, "link_broken")
        await t.check_healthy()


async def test_a_users_frame_is_its_user_frames_one_after_the_other(logs: list[Any]) -> None:
    """A USERS frame follows the same rules as the USER frames it stands for: its messages
    ahead of their turn wait, repeats are dropped, one past the window breaks the channel
    (once: those after it find the channel gone), and one for an end that is not here is
    dropped; the link goes on."""
    async with tree() as t:

        def users(seq: int, *data: object, cid: int = CID_PC) -> None:
            t.from_c(frame(P, C, USERS, cid, 0, seq, [payload(d) for d in data], []))

        users(3, "third", "fourth")
        await trio.testing.wait_all_tasks_blocked()
        end = t.p.ends[CID_PC, 0]
        assert sorted(end.early) == [3, 4]
        users(1, "first", "second", "third, again")
        assert [(await t.p_c.receive()).data for _ in range(4)] == [
            "first",
            "second",
            "third",
            "fourth",
        ]
        users(0x6600, "nobody's", cid=0x6600)  # no such end here: dropped
        assert not events(logs, "channel_broken")
        users(5, "fifth")
        users(6 + EARLY_WINDOW, "past the window", "after it")
        assert (await t.p_c.receive()).data == "fifth"
        with pytest.raises(trio.EndOfChannel):
            await t.p_c.receive()
        assert len(events(logs, "channel_broken")) == 1
        assert t.c_link_up
        assert not events(logs, "link_broken")
        await t.check_healthy()


async def test_a_close_after_a_seq_no_peer_sent_breaks_its_channel(logs: list[Any]) -> None:
    """A CLOSE whose last message is below what arrived, or past the window, breaks the
    channel (after what arrived); the link stays."""
    async with tree() as t:
        t.c_p.post_message(1)
        t.c_p.post_message(2)
        assert (await t.p_c.receive()).data == 1
        t.from_c(frame(P, C, CLOSE, CID_PC, 0, 1))  # but two arrived
        assert (await t.p_c.receive()).data == 2
        with pytest.raises(trio.EndOfChannel):
            await t.p_c.receive()
        assert len(events(logs, "channel_broken")) == 1
        t.from_c(frame(P, G, CLOSE, CID_PG, 0, EARLY_WINDOW + 1))
        with pytest.raises(trio.EndOfChannel):
            await t.p_g.receive()
        assert len(events(logs, "channel_broken")) == 2
        assert t.c_link_up
        await t.check_healthy()


async def test_frames_for_ends_that_are_not_here_are_dropped(logs: list[Any]) -> None:
    """CLOSE, LOST, MOVED, ACK, MOVED_ACK, DONE, REHOMED and USER for ends P does not have change
    nothing (the ports a USER carries close, so their peers hear of it); the link stays."""
    async with tree() as t:
        peer = waiting_at_c(t, 0x6200)
        for kind, *fields in [
            (CLOSE, 7),
            (LOST,),
            (MOVED, D, C, 1),
            (ACK, 5),
            (MOVED_ACK, 1, 1, C),
            (DONE, 1),
            (REHOMED, D, 0),
            (USER, 1, payload("lost"), [descriptor(0x6200)], False),
        ]:
            t.from_c(frame(P, C, kind, 0x6999, 1, *fields))
        await t.check_lost(peer)
        t.c_p.post_message("after")
        assert (await t.p_c.receive()).data == "after"
        assert t.c_link_up
        assert not events(logs, "link_broken")
        await t.check_healthy()


LIES = {
    "ROUTES claiming P": frame(P, C, ROUTES, [P]),
    "ROUTES claiming D": frame(P, C, ROUTES, [C, D]),
    "ROUTES from G, not the neighbour": frame(P, G, ROUTES, [STRANGER]),
    "ROUTES to pass on to D": frame(D, C, ROUTES, [STRANGER]),
    "NODE_LOST of P": frame(P, C, NODE_LOST, [P]),
    "NODE_LOST of D": frame(P, C, NODE_LOST, [D]),
    "NODE_LOST of C itself": frame(P, C, NODE_LOST, [C]),
    "NODE_LOST of a node P does not know": frame(P, C, NODE_LOST, [STRANGER]),
    "NODE_LOST to pass on to D": frame(D, C, NODE_LOST, [G]),
    "BYE from G": frame(P, G, BYE),
    "a frame from D, by C": frame(P, D, LOST, CID_PC, 0),
    "a frame from P, by C": frame(P, P, LOST, CID_PC, 0),
    "a frame from a stranger": frame(D, STRANGER, LOST, CID_CD, 1),
    "a frame for G, sent back": frame(G, C, LOST, CID_PG, 1),
    "a frame for C, sent back": frame(C, C, LOST, CID_PC, 1),
    "a frame that is not a frame": b"\xc1",
    "a frame of the wrong shape": frame(P, C, USER, CID_PC, 0, 1, b"", [[]], False),
}


@pytest.mark.parametrize("lie", sorted(LIES))
async def test_a_child_that_breaks_the_protocol_is_cut_off(lie: str, logs: list[Any]) -> None:
    """C sends what a child may not send: P drops it with one log line; the ports whose peers
    were at C or G close, at P and at D; P and D go on."""
    async with tree() as t:
        t.c_p.post_message("before")
        t.from_c(LIES[lie])
        await trio.testing.wait_all_tasks_blocked()
        assert [e["node"] for e in events(logs, "link_broken")] == [P]
        assert not t.c_link_up
        assert C not in t.p.routes
        assert G not in t.p.routes
        assert (await t.p_c.receive()).data == "before"
        await t.check_lost(t.p_c, t.p_g, t.d_c)
        assert not events(logs, "frame_failed")
        await t.check_healthy()


async def test_what_a_child_may_claim(logs: list[Any]) -> None:
    """C may announce new nodes behind it, and report lost the nodes behind it (their ports
    close), again too; what it sends for a lost node is dropped (its ports close); it may not
    bring a lost node back."""
    async with tree() as t:
        t.from_c(frame(P, C, ROUTES, [C, G, STRANGER]))
        await trio.testing.wait_all_tasks_blocked()
        assert t.p.routes[STRANGER] == C
        t.from_c(frame(P, C, NODE_LOST, [G, STRANGER]))
        await t.check_lost(t.p_g)
        t.from_c(frame(P, C, NODE_LOST, [G]))
        peer = waiting_at_c(t, 0x6600)
        t.from_c(frame(G, C, USER, CID_PG, 1, 1, payload(0), [descriptor(0x6600)], False))
        await t.check_lost(peer)
        assert t.c_link_up
        assert G not in t.p.routes
        t.c_p.post_message("still here")
        assert (await t.p_c.receive()).data == "still here"
        t.from_c(frame(P, C, ROUTES, [G]))
        await trio.testing.wait_all_tasks_blocked()
        assert not t.c_link_up
        assert len(events(logs, "link_broken")) == 1
        await t.check_healthy()


async def test_garbage_relayed_by_an_honest_forward_breaks_only_its_channel(
    logs: list[Any],
) -> None:
    """D's end of C-D moves to P; before C hears of it, C sends a seq no peer sends, to D,
    whose forward relays it to P under D's name: P breaks that channel (both ends close),
    not its link to D, which only relayed it."""
    async with tree() as t:
        carrier_d, carrier_p = t.keep(*bridge(t.d, t.p))
        carrier_d.post_message("take", [t.d_c])
        t.from_c(frame(D, C, USER, CID_CD, 1, 10**9, payload("absurd"), [], False))
        moved = t.keep((await carrier_p.receive()).ports[0])[0]
        with pytest.raises(trio.EndOfChannel):
            await moved.receive()
        with pytest.raises(trio.EndOfChannel):
            await t.c_d.receive()
        assert len(events(logs, "channel_broken")) == 1
        assert t.c_link_up
        assert not events(logs, "link_broken")
        await t.check_healthy()


async def test_a_child_cannot_take_the_place_of_an_end_at_another_node(
    logs: list[Any],
) -> None:
    """A descriptor naming the end D already has of C-D, sent by C to D through P, is refused
    at D (a messageerror), and D's end goes on working."""
    async with tree() as t:
        _carrier_c, carrier_d = t.keep(*channel(t.c, t.d, 0x6300))
        t.from_c(frame(D, C, USER, 0x6300, 1, 1, payload([0]), [descriptor(CID_CD, 1)], False))
        assert (await carrier_d.receive()).type == "messageerror"
        t.c_d.post_message("C-D works")
        assert (await t.d_c.receive()).data == "C-D works"
        assert t.c_link_up
        assert not events(logs, "link_broken")
        await t.check_healthy()


# -- a socket link fed raw bytes ----------------------------------------------------------

CID_S = 0x5010
BEFORE = framed(frame(P, C, USER, CID_S, 0, 1, payload("before"), [], False))
Linked = tuple[Node, trio.socket.SocketType, MessagePort, trio.Event]


@asynccontextmanager
async def socket_link() -> AsyncIterator[Linked]:
    """P's node with a SocketLink to C over a socketpair; our end of the pair; a port at P
    whose peer is at C; an event set when the link's `run()` returned."""
    node = Node(P)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    link = SocketLink(node, C, ours)
    node.add_link(C, link)
    core = PortCore(node.token)
    core.peer = RemoteEnd(node, core, CID_S, 0, C)
    port: MessagePort = MessagePort._create(core)
    raw = trio.socket.from_stdlib_socket(theirs)
    done = trio.Event()

    async def run() -> None:
        await link.run()
        done.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            yield node, raw, port, done
            with trio.fail_after(5):
                await done.wait()
    finally:
        port.close()
        raw.close()


BAD_STREAMS = {
    "a frame cut short by the end of the stream": (BEFORE[:7], True),
    "a length over the limit": (HEADER.pack(MAX_FRAME + 1, 0), False),
    "an fd count over the limit": (HEADER.pack(1, MAX_FDS + 1), False),
    "fds announced that never come": (framed(frame(P, C, LOST, CID_S, 0), 1), False),
    "a frame that is not msgpack": (framed(b"\xc1\xc1"), False),
    "a frame of the wrong shape": (framed(_pack([P, C, USER, CID_S])), False),
    "a frame from a node not behind the link": (framed(frame(P, D, LOST, CID_S, 0)), False),
}


@pytest.mark.parametrize("case", sorted(BAD_STREAMS))
async def test_a_socket_link_cuts_off_a_peer_that_breaks_the_framing(
    case: str, logs: list[Any]
) -> None:
    """What arrived before is delivered; then one `link_broken` line, the node loses the peer
    (the port's close comes), and `run()` returns."""
    data, hang_up = BAD_STREAMS[case]
    async with socket_link() as (node, raw, port, done):
        await raw.send(BEFORE)
        await raw.send(data)
        if hang_up:
            raw.shutdown(socket.SHUT_WR)
        assert (await port.receive()).data == "before"
        with pytest.raises(trio.EndOfChannel):
            await port.receive()
        await done.wait()
        assert C not in node.links
    assert len(events(logs, "link_broken")) == 1, events(logs, "link_broken")


async def test_a_socket_link_closed_between_frames_is_no_error(logs: list[Any]) -> None:
    """A peer that hangs up between two frames is lost, without a `link_broken` line."""
    async with socket_link() as (node, raw, port, _done):
        await raw.send(BEFORE)
        raw.shutdown(socket.SHUT_WR)
        assert (await port.receive()).data == "before"
        with pytest.raises(trio.EndOfChannel):
            await port.receive()
    assert not events(logs, "link_broken")
    assert C not in node.links


@settings(max_examples=min(EXAMPLES, 50), deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=32), max_size=6))
def test_random_bytes_on_a_socket_link(chunks: list[bytes]) -> None:
    """Random bytes, then the end of the stream: `run()` returns, at most one `link_broken`
    line, and the node has lost the peer."""

    async def main() -> None:
        with structlog.testing.capture_logs() as logs:
            async with socket_link() as (node, raw, _, _):
                try:
                    for chunk in chunks:
                        await raw.send(chunk)
                    raw.shutdown(socket.SHUT_WR)
                except OSError:  # the link hung up on us
                    pass
            assert C not in node.links
            assert len(events(logs, "link_broken")) <= 1
            assert not events(logs, "frame_failed")

    trio.run(main)


# -- a real child process that speaks garbage ---------------------------------------------

FAKE_CHILD = Path(__file__).with_name("_garbage_child.py")


def children() -> set[int]:
    """The processes this process started and has not reaped (zombies included)."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        found |= {int(pid) for pid in (task / "children").read_text().split()}
    return found


@pytest.mark.parametrize("mode", ["bytes", "lie"])
async def test_a_child_process_that_speaks_garbage_dies_alone(
    mode: str, logs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process actor whose process sends garbage after its hello is cut off (one log line)
    and crashes with ProcessDiedError; a process actor beside it goes on answering; no child
    process is left."""
    real_open = trio.lowlevel.open_process
    started: list[trio.Process] = []
    fake = False

    async def open_process(command: list[str], **kwargs: Any) -> trio.Process:
        if fake:
            command = [sys.executable, str(FAKE_CHILD), *command[3:]]
            kwargs["env"] = {**kwargs["env"], "GARBAGE_MODE": mode}
        process = await real_open(command, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(trio.lowlevel, "open_process", open_process)
    before = children()
    honest, liar = MessageChannel(), MessageChannel()
    async with actors.open_supervisor() as sup:
        sup.spawn(echo, honest.port2, process=True, restart=Restart.TEMPORARY)
        assert await actors.ask(honest.port1, "hello") == "hello"
        fake = True
        handle = sup.spawn(echo, liar.port2, process=True, restart=Restart.TEMPORARY)
        await handle.wait()
        assert isinstance(handle.statistics().last_crash, ProcessDiedError)
        assert await actors.ask(honest.port1, "still there?") == "still there?"
        honest.port1.close()
    liar.port1.close()
    assert len(events(logs, "link_broken")) == 1, events(logs, "link_broken")
    assert len(started) == 2
    assert all(p.returncode is not None for p in started)
    assert children() <= before


async def test_a_reader_that_breaks_the_rules_at_a_slot_port_breaks_only_that_channel(
    logs: list[Any],
) -> None:
    """A slot port kept here for a process actor's reader (a HomeEnd) takes from the reader
    only what node.py's rules allow: a seq past EARLY_WINDOW or a close after a seq it never
    sent ends that channel with one log line, the reader is told, and the slot keeps the port
    with what was not read (as when the reader's process dies); the link goes on."""
    async with tree() as t:
        for lie in ("seq", "close"):
            outside = MessageChannel()
            t.keep(outside.port1, outside.port2)
            home = HomeEnd(t.p, outside.port2, C, CursorPage(), SLOT)
            reader = t.keep(t.c.adopt(home.descriptor()))[0]
            outside.port1.post_message("read")
            home.pushed()
            assert (await reader.receive()).data == "read"
            if lie == "seq":
                t.from_c(frame(P, C, USER, home.cid, 0, 3 + EARLY_WINDOW, payload(1), [], False))
            else:
                t.from_c(frame(P, C, CLOSE, home.cid, 0, 5 + EARLY_WINDOW))
            with pytest.raises(trio.EndOfChannel):
                await reader.receive()  # told
            assert (home.cid, 0) not in t.p.ends
            outside.port1.post_message("kept")  # the slot's port works, and still has what
            # the reader never reported read (C has no cursor page here: nothing is reported)
            assert [(await outside.port2.receive()).data for _ in "ab"] == ["read", "kept"]
        assert len(events(logs, "channel_broken")) == 2
        assert not events(logs, "link_broken")
        await t.check_healthy()
