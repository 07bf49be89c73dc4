"""The Transferable protocol: what structured clone needs to know about objects that move.

Ports and buffers implement it, so `_clone` can move them without importing `_ports`.
A transfer happens in two phases, so that a failed `post_message` detaches nothing:
every entry is checked, the message is cloned (each transferable in it replaced by its
*shell*, the fresh object the receiver will get), every entry is checked again for being
detached, and only then does each entry commit: its contents move into its shell.
"""

from __future__ import annotations

from typing import ClassVar, Self

__all__ = ["Transferable"]


class Transferable:
    """Base of every object that `transfer=[...]` can move (`MessagePort`, `ArrayBuffer`)."""

    __slots__ = ()
    _owned: ClassVar[bool] = False
    """Whether an actor owns objects of this kind: closes them (`close()`) when it ends."""

    def _transfer_shell(self) -> Self:
        """A new, empty object of the same kind: what the receiver will hold."""
        raise NotImplementedError

    def _transfer_refusal(self) -> str | None:
        """Why this object cannot be transferred right now (detached, ...), or `None`."""
        raise NotImplementedError

    def _transfer_commit(self, shell: Self) -> None:
        """Move this object's contents into `shell` and detach this object. Cannot fail."""
        raise NotImplementedError

    def _clone_untransferred(self) -> object:
        """The clone of this object when it sits in a message but not in the transfer list.

        Raises `DataCloneError` when such an object can only be transferred.
        """
        raise NotImplementedError
