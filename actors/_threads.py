"""Which thread may use a trio run's ports: the run's own. The check, and its error.

A port core records the thread of the run it belongs to (`PortCore.thread`; `None` for a core
of no run). The check is one `get_ident()` compare, so it can sit on the hot paths; the error
names the call and the `trio.from_thread` call to make instead.
"""

from __future__ import annotations

from threading import get_ident

__all__ = ["get_ident", "outside_run", "wrong_thread"]


def outside_run(thread: int | None) -> bool:
    """Whether the calling thread is outside the run of `thread` (`None`: no run, never)."""
    return thread is not None and thread != get_ident()


def wrong_thread(what: str, owner: str, fix: str, done: str = "was called") -> RuntimeError:
    """The error for a call made from outside the run that owns the object.

    Args:
        what: the call, as `"MessagePort.close()"`.
        owner: what the run owns, as `"port"`.
        fix: what to do instead, as `"call it through trio.from_thread.run_sync(port.close)"`.
        done: how the call was made, as `"was called"` or `"was set"`.
    """
    return RuntimeError(
        f"{what} {done} from a thread outside the trio run that owns the {owner}; {fix}"
    )
