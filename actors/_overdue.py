"""Waits that may never end, watched: an ask unanswered, a name nobody serves yet.

trio's rule is that nothing times out by itself: a caller who wants a deadline sets one
(`trio.fail_after`). But a request that is held and never answered must not hang silently.
Each such wait is watched, and one still waiting after its `warn_after` seconds (5 by
default, the timeout of OTP's `gen_server:call`) is reported once, as a warning that says what
waits, where, for how long, and what usually causes it. The wait itself goes on.

One system task per trio run does the watching, started the first time something is
watched. A watched wait costs a dict entry while it lasts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, final

import trio

from ._log import logger

__all__ = ["WARN_AFTER", "Watch", "watch"]

WARN_AFTER: Final = 5.0
"""Seconds a wait may last before it is reported (OTP's default timeout for a call)."""


@final
class Watch:
    """One watched wait: `done()` when it ends, however it ends.

    What the report says is made only if it is due: `describe(*about)` gives its fields.
    """

    __slots__ = ("about", "deadline", "describe", "event", "since", "watchdog")

    def __init__(
        self,
        watchdog: _Watchdog,
        since: float,
        deadline: float,
        event: str,
        describe: Callable[..., dict[str, Any]],
        about: tuple[Any, ...],
    ) -> None:
        self.watchdog = watchdog
        self.since = since
        self.deadline = deadline
        self.event = event
        self.describe = describe
        self.about = about

    def done(self) -> None:
        self.watchdog.live.pop(self, None)


@final
class _Watchdog:
    """The run's system task that reports waits past their time.

    It holds only the waits still going on (most end within microseconds, and are gone at
    once): no timer per wait. It sleeps until the earliest deadline among them, or, when there
    are none, for a while longer before it sleeps until kicked, so that a stream of short
    waits costs a dict entry each and no wakeup.
    """

    __slots__ = ("kick", "live", "waking")

    _current: Final = trio.lowlevel.RunVar["_Watchdog"]("actors_watchdog")

    def __init__(self) -> None:
        self.live: dict[Watch, None] = {}
        self.kick = trio.Event()
        self.waking = math.inf  # when it wakes next by itself

    @classmethod
    def current(cls) -> _Watchdog:
        try:
            return cls._current.get()
        except LookupError:
            watchdog = cls()
            cls._current.set(watchdog)
            trio.lowlevel.spawn_system_task(watchdog.run, name="actors watchdog")
            return watchdog

    def add(self, watch: Watch) -> None:
        self.live[watch] = None
        if watch.deadline < self.waking:  # (a stream of equal waits never kicks)
            self.waking = -math.inf
            self.kick.set()

    async def run(self) -> None:
        live = self.live
        linger = math.inf  # how long to stay awake with nothing watched (the last wait's span)
        while True:
            now = trio.current_time()
            due = [watch for watch in live if watch.deadline <= now]
            for watch in due:
                del live[watch]  # reported once
                waited = round(now - watch.since, 3)
                try:
                    fields = watch.describe(*watch.about)
                except Exception:  # a report must not end the watching
                    fields = {}
                logger().warning(watch.event, waited=waited, **fields)
            if live:
                waking = min(watch.deadline for watch in live)
                linger = max(watch.deadline - watch.since for watch in live)
            elif math.isfinite(linger):
                waking, linger = now + linger, math.inf  # one more round, then sleep
            else:
                waking = math.inf
            self.waking = waking
            with trio.move_on_at(waking):
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
    gives, after `warn_after` seconds if `done()` was not called by then (at most about
    `warn_after` later than that). `None` (no watch) for `warn_after=None`."""
    if warn_after is None:
        return None
    now = trio.current_time()
    watchdog = _Watchdog.current()
    entry = Watch(watchdog, now, now + warn_after, event, describe, about)
    watchdog.add(entry)
    return entry
