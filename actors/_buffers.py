"""ArrayBuffer: a byte buffer that a transfer moves without copying."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

from ._exceptions import DataCloneError
from ._memfd import MemfdMapping, allocate, copy_of
from ._transfer import Transferable

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["SHARED_MEMORY_THRESHOLD", "ArrayBuffer"]

SHARED_MEMORY_THRESHOLD: Final = 1 << 20
"""Buffers of at least this many bytes (1 MiB) keep them in shared memory (a memfd, on Linux).

Such a buffer can move to another process as an fd instead of its bytes. Measured with
`bench/bench_buffers.py` on our 2-CPU VM, a round trip to a child process and back takes about
0.14 ms as an fd, whatever the size; as bytes through the socket, 0.14 ms at 64 KiB (a tie),
0.31 ms at 256 KiB, 0.83 ms at 1 MiB and 55 to 95 ms at 64 MiB. What a memfd costs: two fds,
about 5 µs of system calls, and fresh pages for every copy into one (`ArrayBuffer(data)`,
`slice`, a clone): about 0.4 ms per MiB, where a `bytearray` copy that reuses the heap takes
0.035 ms. At 1 MiB the fd saves more per hop than that copy costs (the round trip is 6 times
faster), and however many large buffers a process holds, it holds at most two fds per MiB."""

_Storage = bytearray | MemfdMapping
_LIVE_VIEW: Final = "ArrayBuffer has a live memoryview; release it before transferring"


@final
class ArrayBuffer(Transferable):
    """A fixed-length, mutable byte buffer that can be transferred.

    `ArrayBuffer(b"...")` (any bytes-like object) copies the bytes; `ArrayBuffer(n)` is `n`
    zero bytes. Posting a buffer in a message copies it. Listing it in `transfer=` moves its
    storage to the receiver without a copy and *detaches* this object: its `byte_length`
    becomes 0 and reading or writing it raises `ValueError`.

    Read and write the contents through `view()`, a `memoryview`. A buffer with a live view
    cannot be transferred ([`DataCloneError`][actors.DataCloneError]), because the view would
    let the sender see the receiver's bytes: release views first, most simply with
    `with buf.view() as v:`. `len(buf)` is its `byte_length`, and `bytes(buf)` copies it out.

    A buffer of 1 MiB or more keeps its bytes in shared memory where it can (a memfd, on
    Linux), so that another process can be handed the buffer without a copy. In the process,
    nothing about it differs.

    Args:
        source: a length (the buffer is that many zero bytes), or a bytes-like object to copy.

    Raises:
        TypeError: `source` is neither an `int` nor a bytes-like object (a `bool` is refused).
        ValueError: `source` is a negative length.
    """

    __slots__ = ("__weakref__", "_data")

    def __init__(self, source: int | ReadableBuffer = 0) -> None:
        self._data: _Storage | None
        if isinstance(source, bool):
            raise TypeError("ArrayBuffer() takes a length or a bytes-like object, not bool")
        if isinstance(source, int):
            if source < 0:
                raise ValueError(f"ArrayBuffer length must be >= 0, not {source}")
            if source < SHARED_MEMORY_THRESHOLD:
                self._data = bytearray(source)
            else:
                mapping = allocate(source)
                self._data = bytearray(source) if mapping is None else mapping
            return
        try:
            view = memoryview(source)
        except TypeError:
            raise TypeError(
                f"ArrayBuffer() takes a length or a bytes-like object, not {type(source).__name__}"
            ) from None
        with view:
            self._data = bytearray(view) if view.nbytes < SHARED_MEMORY_THRESHOLD else copy_of(view)

    @classmethod
    def _adopt(cls, data: _Storage | None) -> ArrayBuffer:
        buf = cls.__new__(cls)
        buf._data = data
        return buf

    def _storage(self) -> _Storage:
        if self._data is None:
            raise ValueError("ArrayBuffer is detached (it was transferred)")
        return self._data

    def _memfd(self) -> MemfdMapping | None:
        """The memfd mapping that holds the bytes, or `None` (a `bytearray`, or detached)."""
        data = self._data
        return data if isinstance(data, MemfdMapping) else None

    def _detach(self) -> None:
        """Detach the buffer without handing its storage to anyone (the caller took it)."""
        self._data = None

    @property
    def byte_length(self) -> int:
        """The length in bytes; 0 once detached."""
        return 0 if self._data is None else len(self._data)

    @property
    def detached(self) -> bool:
        """`True` once the buffer was transferred away."""
        return self._data is None

    def view(self) -> memoryview:
        """A writable `memoryview` of the bytes. Release it before transferring the buffer.

        Returns:
            A view of the buffer's own storage: writes through it change the buffer.

        Raises:
            ValueError: the buffer is detached.
        """
        return memoryview(self._storage())

    def slice(self, start: int = 0, end: int | None = None) -> ArrayBuffer:
        """A new buffer holding a copy of `[start:end]` (Python slice rules).

        Args:
            start: the first byte copied; negative counts from the end.
            end: the byte after the last one copied; `None` for the end of the buffer.

        Returns:
            A new, independent buffer.

        Raises:
            ValueError: the buffer is detached.
        """
        data = self._storage()
        if type(data) is bytearray:
            return ArrayBuffer._adopt(data[start:end])
        with memoryview(data) as whole, whole[start:end] as part:
            return ArrayBuffer._adopt(
                bytearray(part) if part.nbytes < SHARED_MEMORY_THRESHOLD else copy_of(part)
            )

    def __bytes__(self) -> bytes:
        return bytes(self._storage())

    def __len__(self) -> int:
        return self.byte_length

    def __repr__(self) -> str:
        if self._data is None:
            return "<ArrayBuffer detached>"
        return f"<ArrayBuffer byte_length={len(self._data)}>"

    # -- Transferable ---------------------------------------------------------------------

    def _transfer_shell(self) -> ArrayBuffer:
        return ArrayBuffer._adopt(None)

    def _transfer_refusal(self) -> str | None:
        data = self._data
        if data is None:
            return "ArrayBuffer is already detached"
        if isinstance(data, MemfdMapping):
            return _LIVE_VIEW if data.exported() else None
        try:  # a resize fails exactly when a memoryview of the storage is alive
            data.append(0)
        except BufferError:
            return _LIVE_VIEW
        data.pop()
        return None

    def _transfer_commit(self, shell: ArrayBuffer) -> None:
        shell._data, self._data = self._data, None

    def _clone_untransferred(self) -> ArrayBuffer:
        data = self._data
        if data is None:
            raise DataCloneError("a detached ArrayBuffer cannot be cloned", value=self)
        if type(data) is bytearray:
            return ArrayBuffer._adopt(bytearray(data))
        with memoryview(data) as view:
            return ArrayBuffer._adopt(copy_of(view))
