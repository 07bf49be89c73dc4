"""ArrayBuffer: a byte buffer that a transfer moves without copying."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from ._exceptions import DataCloneError
from ._transfer import Transferable

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["ArrayBuffer"]


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

    Args:
        source: a length (the buffer is that many zero bytes), or a bytes-like object to copy.

    Raises:
        TypeError: `source` is neither an `int` nor a bytes-like object (a `bool` is refused).
        ValueError: `source` is a negative length.
    """

    __slots__ = ("__weakref__", "_data")

    def __init__(self, source: int | ReadableBuffer = 0) -> None:
        self._data: bytearray | None
        if isinstance(source, bool):
            raise TypeError("ArrayBuffer() takes a length or a bytes-like object, not bool")
        if isinstance(source, int):
            if source < 0:
                raise ValueError(f"ArrayBuffer length must be >= 0, not {source}")
            self._data = bytearray(source)
            return
        try:
            with memoryview(source) as view:
                self._data = bytearray(view)
        except TypeError:
            raise TypeError(
                f"ArrayBuffer() takes a length or a bytes-like object, not {type(source).__name__}"
            ) from None

    @classmethod
    def _adopt(cls, data: bytearray | None) -> ArrayBuffer:
        buf = cls.__new__(cls)
        buf._data = data
        return buf

    def _storage(self) -> bytearray:
        if self._data is None:
            raise ValueError("ArrayBuffer is detached (it was transferred)")
        return self._data

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
        return ArrayBuffer._adopt(self._storage()[start:end])

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
        try:  # a resize fails exactly when a memoryview of the storage is alive
            data.append(0)
        except BufferError:
            return "ArrayBuffer has a live memoryview; release it before transferring"
        data.pop()
        return None

    def _transfer_commit(self, shell: ArrayBuffer) -> None:
        shell._data, self._data = self._data, None

    def _clone_untransferred(self) -> ArrayBuffer:
        if self._data is None:
            raise DataCloneError("a detached ArrayBuffer cannot be cloned", value=self)
        return ArrayBuffer._adopt(bytearray(self._data))
