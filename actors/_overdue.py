"""Waits that may never end, watched: an ask unanswered, a name nobody serves yet.

trio's rule is that nothing times out by itself: a caller who wants a deadline sets one
(`trio.fail_after`). But a request that is held and never answered must not hang silently.
Each such wait is watched, and one still waiting after its `warn_after` seconds (5 by
default, the timeout of OTP's `gen_server:call`) is reported once, as a warning that says what
waits, where, for how long, and what usually causes it. The wait itself goes on.

One system task per trio run does the watching, started the first time something is
watched. A watched wait costs a heap push and a flag.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, Final, final

import trio

from ._log import logger

__all__ = ["WARN_AFTER", "Watch", "watch"]

WARN_AFTER: Final = 5.0
"""Seconds a wait may last before it is reported (OTP's default timeout for a call)."""

_order = itertools.count()


@final
class Watch:
    """One watched wait: `done()` when it ends, however it ends.

    What the report says is made only if it is due: `describe(*about)` gives its fields.
    """

    __slots__ = ("about", "describe", "event", "live", "since")

    def __init__(
        self,
        since: float,
        event: str,
        describe: Callable[..., dict[str, Any]],
        about: tuple[Any, ...],
    ) -> None:
        self.since = since
        self.event = event
        self.describe = describe
        self.about = about
        self.live = True

    def done(self) -> None:
        self.live = False


@final
class _Watchdog:
    """The run's system task that reports waits past their time."""

    __slots__ = ("heap", "kick", "waking")

    _current: Final = trio.lowlevel.RunVar["_Watchdog"]("actors_watchdog")

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Watch]] = []
        self.kick = trio.Event()
        self.waking = math.inf

    @classmethod
    def current(cls) -> _Watchdog:
        try:
            return cls._current.get()
        except LookupError:
            watchdog = cls()
            cls._current.set(watchdog)
            trio.lowlevel.spawn_system_task(watchdog.run, name="actors watchdog")
            return watchdog

    def add(self, when: float, watch: Watch) -> None:
        heapq.heappush(self.heap, (when, next(_order), watch))
        if when < self.waking:
            self.kick.set()

    async def run(self) -> None:
        heap = self.heap
        while True:
            now = trio.current_time()
            while heap and (not heap[0][2].live or heap[0][0] <= now):
                _, _, watch = heapq.heappop(heap)
                if watch.live:
                    watch.live = False  # reported once
                    waited = round(now - watch.since, 3)
                    try:
                        fields = watch.describe(*watch.about)
                    except Exception:  # a report must not end the watching
                        fields = {}
                    logger().warning(watch.event, waited=waited, **fields)
            self.waking = heap[0][0] if heap else math.inf
            with trio.move_on_at(self.waking):
                await self.kick.wait()
            if self.kick.is_set():
                self.kick = trio.Event()


def watch(
    warn_after: float | None,
    event: str,
    describe: Callable[..., dict[str, Any]],
    *about: Any,
) -> Watch | None:
    """Watch a wait that starts now: reported as `event`, with the fields `describe(*about)`
    gives, after `warn_after` seconds if `done()` was not called by then. `None` (no watch)
    for `warn_after=None`."""
    if warn_after is None:
        return None
    now = trio.current_time()
    entry = Watch(now, event, describe, about)
    _Watchdog.current().add(now + warn_after, entry)
    return entry
