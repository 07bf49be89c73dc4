"""actors: actors on trio that talk only through the web's Channel Messaging model.

The public surface. Everything here is re-exported from private modules (``actors._*``),
whose ``__module__`` is rewritten to ``actors`` so reprs and tracebacks show public names.
"""

from __future__ import annotations

from ._buffers import ArrayBuffer as ArrayBuffer
from ._clone import structured_clone as structured_clone
from ._events import Event as Event
from ._events import MessageEvent as MessageEvent
from ._exceptions import DataCloneError as DataCloneError
from ._ports import MessageChannel as MessageChannel
from ._ports import MessagePort as MessagePort
from ._ports import MessagePortStatistics as MessagePortStatistics

__all__ = [
    "ArrayBuffer",
    "DataCloneError",
    "Event",
    "MessageChannel",
    "MessageEvent",
    "MessagePort",
    "MessagePortStatistics",
    "structured_clone",
]

__version__ = "0.1.0.dev0"


def _fixup_module_metadata() -> None:
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("actors._"):
            obj.__module__ = "actors"


_fixup_module_metadata()
del _fixup_module_metadata
