"""Conformance: ArrayBuffer, the transferable byte buffer (spec rules 25, 27 and 28 for buffers).

Construction, access, copying, and what a transfer does to a buffer: detach the sender's
object, move the storage without a copy, and refuse while a ``memoryview`` is alive. Rule 22
(SharedArrayBuffer) and the resizable-buffer part of rule 27 have no Python counterpart.
"""

from __future__ import annotations

import gc

import pytest
from _helpers import close_ports
from hypothesis import given
from hypothesis import strategies as st

from actors import ArrayBuffer, DataCloneError, MessageChannel, structured_clone


def _storage(buf: ArrayBuffer) -> list[object]:
    """The bytearray objects a buffer holds (found through the garbage collector's view)."""
    return [ref for ref in gc.get_referents(buf) if type(ref) is bytearray]


def _transferred(buf: ArrayBuffer) -> ArrayBuffer:
    return structured_clone(buf, transfer=[buf])


# -- construction and access -------------------------------------------------------------------


@pytest.mark.parametrize(
    "source", [b"abc", bytearray(b"abc"), memoryview(b"abc")], ids=["bytes", "bytearray", "view"]
)
def test_a_buffer_copies_any_bytes_like_source(source: object) -> None:
    """ArrayBuffer(bytes-like) holds a copy of the bytes."""
    buf = ArrayBuffer(source)  # type: ignore[arg-type]
    assert bytes(buf) == b"abc"
    assert buf.byte_length == 3


def test_a_buffer_does_not_see_later_changes_to_its_source() -> None:
    """ArrayBuffer(bytearray) copies: changing the bytearray later does not change the buffer."""
    source = bytearray(b"abc")
    buf = ArrayBuffer(source)
    source[0] = ord("X")
    assert bytes(buf) == b"abc"


def test_a_buffer_of_length_n_is_n_zero_bytes() -> None:
    """ArrayBuffer(n) is n zero bytes."""
    buf = ArrayBuffer(5)
    assert bytes(buf) == b"\x00" * 5
    assert buf.byte_length == 5
    assert len(buf) == 5


def test_an_empty_buffer() -> None:
    """ArrayBuffer() and ArrayBuffer(0) are empty and not detached."""
    for buf in (ArrayBuffer(), ArrayBuffer(0)):
        assert buf.byte_length == 0
        assert bytes(buf) == b""
        assert not buf.detached


def test_a_negative_length_is_value_error() -> None:
    """ArrayBuffer(-1) raises ValueError."""
    with pytest.raises(ValueError, match="-1"):
        ArrayBuffer(-1)


@pytest.mark.parametrize("source", [True, "abc", 1.5, None, [1, 2]], ids=repr)
def test_a_source_that_is_neither_length_nor_bytes_is_type_error(source: object) -> None:
    """ArrayBuffer(bool / str / float / None / list) raises TypeError."""
    with pytest.raises(TypeError):
        ArrayBuffer(source)  # type: ignore[arg-type]


def test_a_new_buffer_is_not_detached() -> None:
    """A new buffer reports detached == False."""
    assert ArrayBuffer(b"x").detached is False


def test_view_is_a_writable_memoryview_of_the_storage() -> None:
    """view() is a writable memoryview: writes through it show in the buffer."""
    buf = ArrayBuffer(3)
    with buf.view() as view:
        assert type(view) is memoryview
        assert not view.readonly
        view[1] = 7
    assert bytes(buf) == b"\x00\x07\x00"


def test_bytes_is_a_copy() -> None:
    """bytes(buf) is a snapshot: later writes do not change it."""
    buf = ArrayBuffer(b"ab")
    snapshot = bytes(buf)
    with buf.view() as view:
        view[0] = ord("X")
    assert snapshot == b"ab"
    assert bytes(buf) == b"Xb"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(1, 3, b"bc"), (0, None, b"abcde"), (-2, None, b"de"), (3, 1, b""), (2, 100, b"cde")],
)
def test_slice_copies_a_range_with_python_slice_rules(
    start: int, end: int | None, expected: bytes
) -> None:
    """slice(start, end) is a new buffer with a copy of [start:end] (Python slice rules)."""
    buf = ArrayBuffer(b"abcde")
    part = buf.slice(start, end)
    assert type(part) is ArrayBuffer
    assert bytes(part) == expected
    assert part is not buf


def test_slice_defaults_to_the_whole_buffer_and_is_independent() -> None:
    """slice() copies everything, and writing to the slice leaves the buffer alone."""
    buf = ArrayBuffer(b"abc")
    part = buf.slice()
    with part.view() as view:
        view[0] = ord("X")
    assert bytes(buf) == b"abc"
    assert bytes(part) == b"Xbc"


# -- transfer ----------------------------------------------------------------------------------


def test_rule_27_transfer_detaches_the_sender_buffer() -> None:
    """Rule 27: a transferred buffer has byte_length 0, len 0 and detached True."""
    buf = ArrayBuffer(b"abc")
    _transferred(buf)
    assert buf.byte_length == 0
    assert len(buf) == 0
    assert buf.detached


@pytest.mark.parametrize(
    "read",
    [bytes, ArrayBuffer.view, ArrayBuffer.slice, lambda buf: buf.slice(0, 1)],
    ids=["bytes", "view", "slice", "slice-range"],
)
def test_rule_27_a_detached_buffer_cannot_be_read(read: object) -> None:
    """Rule 27: bytes(), view() and slice() of a detached buffer raise ValueError."""
    buf = ArrayBuffer(b"abc")
    _transferred(buf)
    with pytest.raises(ValueError, match="detached"):
        read(buf)  # type: ignore[operator]


def test_rule_27_the_receiver_gets_a_new_buffer_with_the_bytes() -> None:
    """Rule 27: the receiver's buffer is a new object with the same bytes and length."""
    buf = ArrayBuffer(b"abc")
    received = _transferred(buf)
    assert received is not buf
    assert bytes(received) == b"abc"
    assert received.byte_length == 3
    assert not received.detached


def test_transfer_moves_the_storage_without_copying() -> None:
    """A transfer hands the very same bytearray to the receiver; no bytes are copied."""
    buf = ArrayBuffer(b"x" * 1024)
    [storage] = _storage(buf)
    received = _transferred(buf)
    assert _storage(buf) == []
    assert len(_storage(received)) == 1
    assert _storage(received)[0] is storage


async def test_transfer_through_a_port_moves_the_storage_too() -> None:
    """post_message with transfer moves the same bytearray into the received buffer."""
    channel, buf = MessageChannel(), ArrayBuffer(b"abc")
    [storage] = _storage(buf)
    channel.port1.post_message(buf, transfer=[buf])
    received = (await channel.port2.receive()).data
    assert _storage(received)[0] is storage
    close_ports(channel)


def test_rule_25_a_detached_buffer_cannot_be_transferred_again() -> None:
    """Rule 25: transferring a detached buffer raises DataCloneError."""
    buf = ArrayBuffer(1)
    _transferred(buf)
    with pytest.raises(DataCloneError) as info:
        structured_clone(None, transfer=[buf])
    assert info.value.path == "transfer[0]"
    assert info.value.value is buf


def test_a_detached_buffer_cannot_be_cloned() -> None:
    """A detached buffer in a message (not listed) raises DataCloneError."""
    buf = ArrayBuffer(1)
    _transferred(buf)
    with pytest.raises(DataCloneError) as info:
        structured_clone({"buf": buf})
    assert info.value.path == "message['buf']"
    assert info.value.value is buf


def test_a_buffer_with_a_live_view_cannot_be_transferred() -> None:
    """A buffer with a live memoryview raises DataCloneError and is not detached."""
    buf = ArrayBuffer(b"abc")
    view = buf.view()
    with pytest.raises(DataCloneError) as info:
        structured_clone(buf, transfer=[buf])
    assert info.value.path == "transfer[0]"
    assert info.value.value is buf
    assert not buf.detached
    assert bytes(view) == b"abc"
    view.release()


def test_a_slice_of_a_view_also_blocks_the_transfer() -> None:
    """A slice of a view keeps the buffer exported even after the view itself is released."""
    buf = ArrayBuffer(b"abcd")
    view = buf.view()
    part = view[1:3]
    view.release()
    with pytest.raises(DataCloneError):
        structured_clone(None, transfer=[buf])
    part.release()
    structured_clone(None, transfer=[buf])
    assert buf.detached


def test_a_released_view_no_longer_blocks_the_transfer() -> None:
    """Once its views are released (with-block), the buffer transfers normally."""
    buf = ArrayBuffer(b"abc")
    with buf.view() as view:
        view[0] = ord("X")
    received = _transferred(buf)
    assert bytes(received) == b"Xbc"


def test_a_live_view_on_one_buffer_leaves_other_entries_attached() -> None:
    """Rule 28 (D3): a refused viewed buffer leaves other listed buffers attached."""
    free, viewed = ArrayBuffer(1), ArrayBuffer(1)
    with viewed.view(), pytest.raises(DataCloneError):
        structured_clone([free, viewed], transfer=[free, viewed])
    assert not free.detached
    assert not viewed.detached


def test_a_view_does_not_block_a_plain_copy() -> None:
    """Posting (not transferring) a buffer with a live view copies it fine."""
    buf = ArrayBuffer(b"abc")
    with buf.view():
        clone = structured_clone(buf)
    assert bytes(clone) == b"abc"
    assert not buf.detached


async def test_posting_without_transfer_copies_the_buffer() -> None:
    """A buffer posted but not listed arrives as an independent copy; the sender keeps it."""
    channel, buf = MessageChannel(), ArrayBuffer(b"abc")
    channel.port1.post_message(buf)
    received = (await channel.port2.receive()).data
    assert received is not buf
    assert not buf.detached
    with received.view() as view:
        view[0] = ord("X")
    assert bytes(buf) == b"abc"
    assert _storage(received)[0] is not _storage(buf)[0]
    close_ports(channel)


@given(st.binary(max_size=256))
def test_any_bytes_survive_a_transfer(data: bytes) -> None:
    """Whatever the bytes, the transferred buffer holds exactly them."""
    buf = ArrayBuffer(data)
    received = _transferred(buf)
    assert bytes(received) == data
    assert buf.detached
