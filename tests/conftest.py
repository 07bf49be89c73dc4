"""Shared fixtures for the test suite.

- Every async test runs under ``trio.fail_after(WATCHDOG_SECONDS)`` (on the run's clock, so
  the mock clock under ``autojump_clock``). A broken port usually shows up as a message that
  never comes; this turns that hang into a ``TooSlowError`` naming the test.
- A test that never yields to trio's scheduler (say, a dispatcher that never checkpoints)
  cannot be stopped by ``fail_after``; ``HANG_SECONDS`` of wall-clock time later a SIGALRM
  raises inside it, so the suite fails instead of hanging (main thread, POSIX only).
- ``logs`` captures structlog events and puts structlog back the way it found it.
- No zombie, ever: after every test, the test process has no child process left. A child
  still there after a short grace (``REAP_GRACE_SECONDS``) fails the test with its pid, state
  and command line; it is then killed and reaped, so the next test starts clean.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import structlog
import structlog.testing
import trio
from _helpers import child_pids

WATCHDOG_SECONDS = 20
HANG_SECONDS = 60
REAP_GRACE_SECONDS = 2.0


def _with_deadline(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)  # keeps the signature, so pytest still sees the fixtures it asks for
    async def run_with_deadline(*args: Any, **kwargs: Any) -> None:
        with trio.fail_after(WATCHDOG_SECONDS):
            await test(*args, **kwargs)

    return run_with_deadline


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        if inspect.iscoroutinefunction(item.obj) and not hasattr(item.obj, "hypothesis"):
            item.obj = _with_deadline(item.obj)


class HungTest(Exception):
    """Raised by SIGALRM in a test that has run for HANG_SECONDS of wall-clock time."""


@pytest.fixture(autouse=True)
def _hang_alarm(request: pytest.FixtureRequest) -> Iterator[None]:
    """The alarm; a module of long searches sets its own ``HANG_SECONDS``."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return
    seconds = getattr(request.module, "HANG_SECONDS", HANG_SECONDS)

    def bark(signum: int, frame: object) -> None:
        raise HungTest(f"still running after {seconds}s of wall-clock time: a task never yields")

    previous = signal.signal(signal.SIGALRM, bark)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """The structlog events logged while the test runs (``structlog.testing.capture_logs``)."""
    was_configured = structlog.is_configured()
    with structlog.testing.capture_logs() as entries:
        yield entries
    if not was_configured:
        structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _structlog_as_found() -> Iterator[None]:
    """Undo what ``capture_logs()`` leaves behind: structlog stays "configured" after it,
    which would switch actors' quiet default off for every later test."""
    was_configured = structlog.is_configured()
    yield
    if not was_configured and structlog.is_configured():
        structlog.reset_defaults()


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as file:
            state = file.read().rpartition(")")[2].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            cmdline = file.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return f"pid {pid} (gone)"
    return f"pid {pid} state {state} {cmdline or '(zombie: no command line)'}"


def _reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:  # reaped meanwhile (or not ours after all)
        pass


@pytest.fixture(autouse=True)
def _no_child_process_left() -> Iterator[None]:
    """Fail a test that leaves a child process (running or a zombie) behind it."""
    if not os.path.isdir("/proc/self/task"):
        yield
        return
    yield
    left = child_pids()
    deadline = time.monotonic() + REAP_GRACE_SECONDS
    while left and time.monotonic() < deadline:  # a reaper thread may be finishing
        time.sleep(0.01)
        left = child_pids()
    if not left:
        return
    described = [_describe(pid) for pid in left]
    for pid in left:
        _reap(pid)
    pytest.fail("the test left child processes behind it: " + "; ".join(described), False)
