"""Calls handed to a trio run from anywhere, in batches: one wake-up of the run per batch.

`MessagePort.__del__` (which runs wherever the port is collected: in another thread, or in a
garbage-collection pass in the middle of our own code) hands its work to the run this way, and
so do posts from threads outside the run.
Each run has one list of pending calls, keyed by its token. The call that finds the list idle
schedules one `run_sync_soon(flush)`; later calls only append. The flush marks the list idle
*before* it drains it, so a call made meanwhile is either drained by it or schedules the next
flush: nothing is missed, and calls run in the order they were made (first in, first out).

A run that has finished takes no more calls: whoever finds that out forgets the run's list and
runs, in its own thread, the `if_finished` fallback of every call still pending there.
The lists are keyed weakly: once a run's token is gone, so is its list.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Final, final

import trio

from ._log import logger

__all__ = ["call_soon"]

Call = tuple[Callable[..., object], tuple[Any, ...], Callable[..., object] | None]


@final
class _Inbox:
    """The pending calls of one trio run."""

    __slots__ = ("calls", "finished", "scheduled")

    def __init__(self) -> None:
        self.calls: deque[Call] = deque()
        self.scheduled = False  # a flush is on its way to the run
        self.finished = False  # the run refused a flush: it is over

    def flush(self) -> None:
        """Run the calls pending now (in the trio run, from `run_sync_soon`)."""
        self.scheduled = False  # first: a call made while we drain schedules the next flush
        calls = self.calls
        for _ in range(len(calls)):  # a bounded batch: later calls have their own flush
            try:
                fn, args, _ = calls.popleft()
            except IndexError:  # the run is ending and another thread drained the rest
                return
            try:
                fn(*args)
            except Exception as exc:  # raising here would crash the whole trio run
                logger().error("run_call_failed", call=_name(fn), exc_info=exc)

    def drain_finished(self) -> None:
        """The run is over: run the fallback of every call still pending, here."""
        calls = self.calls
        while True:
            try:
                _, args, if_finished = calls.popleft()
            except IndexError:
                return
            if if_finished is not None:
                if_finished(*args)


_inboxes: Final = weakref.WeakKeyDictionary[Any, _Inbox]()
# Only taken to make a run's list; reentrant, as a collection inside it may call again.
_creating: Final = threading.RLock()


def call_soon(
    token: trio.lowlevel.TrioToken,
    fn: Callable[..., object],
    *args: Any,
    if_finished: Callable[..., object] | None = None,
) -> None:
    """Call `fn(*args)` in `token`'s run soon; safe from any thread and from `__del__`.

    If the run has finished, `if_finished(*args)` is called instead, in whichever thread
    finds that out (this one, or one that called at about the same time), or nothing is.
    """
    inbox = _inboxes.get(token)
    if inbox is None:
        with _creating:
            inbox = _inboxes.get(token)
            if inbox is None:
                inbox = _inboxes[token] = _Inbox()
    inbox.calls.append((fn, args, if_finished))
    if inbox.scheduled and not inbox.finished:
        return
    if not inbox.finished:
        inbox.scheduled = True
        try:
            token.run_sync_soon(inbox.flush)
            return
        except trio.RunFinishedError:
            inbox.finished = True
            if _inboxes.get(token) is inbox:
                _inboxes.pop(token, None)
    inbox.drain_finished()


def _name(fn: Callable[..., object]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
