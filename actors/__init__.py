"""actors: actors on trio that talk only through the web's Channel Messaging model.

The public surface. Everything here is re-exported from private modules (`actors._*`),
whose `__module__` is rewritten to `actors` so reprs and tracebacks show public names.
"""

from __future__ import annotations

from ._actor import ActorHandle as ActorHandle
from ._actor import ActorState as ActorState
from ._actor import ActorStatistics as ActorStatistics
from ._actor import current_actor as current_actor
from ._ask import ask as ask
from ._broadcast import BroadcastChannel as BroadcastChannel
from ._buffers import ArrayBuffer as ArrayBuffer
from ._clone import structured_clone as structured_clone
from ._collection import PortCollection as PortCollection
from ._collection import PortCollectionStatistics as PortCollectionStatistics
from ._collection import SlowMemberPolicy as SlowMemberPolicy
from ._events import Event as Event
from ._events import MessageEvent as MessageEvent
from ._exceptions import DataCloneError as DataCloneError
from ._exceptions import InvalidStateError as InvalidStateError
from ._exceptions import Lagged as Lagged
from ._exceptions import ProcessDiedError as ProcessDiedError
from ._exceptions import RemoteError as RemoteError
from ._exceptions import ServiceNotFoundError as ServiceNotFoundError
from ._exceptions import TooManyRestartsError as TooManyRestartsError
from ._ports import SEND_WINDOW as SEND_WINDOW
from ._ports import MessageChannel as MessageChannel
from ._ports import MessagePort as MessagePort
from ._ports import MessagePortStatistics as MessagePortStatistics
from ._restart import Backoff as Backoff
from ._restart import Restart as Restart
from ._restart import RestartStrategy as RestartStrategy
from ._restart import SupervisorStatistics as SupervisorStatistics
from ._rpc import Proxy as Proxy
from ._rpc import expose as expose
from ._rpc import proxy as proxy
from ._rpc import transfer as transfer
from ._rpc import wrap as wrap
from ._services import Incoming as Incoming
from ._services import connect as connect
from ._services import serve as serve
from ._supervisor import Supervisor as Supervisor
from ._supervisor import open_supervisor as open_supervisor
from ._tree import ActorTree as ActorTree

__all__ = [
    "ActorHandle",
    "ActorState",
    "ActorStatistics",
    "ActorTree",
    "ArrayBuffer",
    "Backoff",
    "BroadcastChannel",
    "DataCloneError",
    "Event",
    "Incoming",
    "InvalidStateError",
    "Lagged",
    "MessageChannel",
    "MessageEvent",
    "MessagePort",
    "MessagePortStatistics",
    "PortCollection",
    "PortCollectionStatistics",
    "ProcessDiedError",
    "Proxy",
    "RemoteError",
    "Restart",
    "RestartStrategy",
    "SEND_WINDOW",
    "ServiceNotFoundError",
    "SlowMemberPolicy",
    "Supervisor",
    "SupervisorStatistics",
    "TooManyRestartsError",
    "ask",
    "connect",
    "current_actor",
    "expose",
    "open_supervisor",
    "proxy",
    "serve",
    "structured_clone",
    "transfer",
    "wrap",
]

__version__ = "0.1.0.dev0"


def _fixup_module_metadata() -> None:
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("actors._"):
            obj.__module__ = "actors"


_fixup_module_metadata()
del _fixup_module_metadata
