"""No failure of logging may change what the library does (a sink that raises, a full disk,
a value whose repr raises): OTP's logger drops a failing handler, it never kills a
supervisor."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, Restart, _log, open_supervisor


class Boom(Exception):
    """A scripted crash."""


def _raise_broken_pipe(logger: Any, method: str, event: Any) -> Any:
    raise BrokenPipeError("the log pipe is closed")


@pytest.fixture
def broken_sink() -> Iterator[None]:
    """structlog configured with a processor that raises on every event."""
    structlog.configure(processors=[_raise_broken_pipe])
    try:
        yield
    finally:
        structlog.reset_defaults()


class FullDisk:
    """A stderr whose every write fails as a full disk does."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        raise OSError(28, "No space left on device")


async def test_a_crash_is_restarted_when_its_log_line_raises(broken_sink: None) -> None:
    """The crashed child is restarted and its healthy sibling keeps running; the block
    raises nothing, though logging the crash (and the restart) raised each time."""
    crashes: list[int] = []
    failures = _log.failures()

    async def flaky() -> None:
        me = actors.current_actor()
        if me.incarnation == 1:
            crashes.append(me.incarnation)
            raise Boom
        await trio.sleep_forever()

    async def healthy() -> None:
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        sibling = sup.spawn(healthy)
        child = sup.spawn(flaky)
        await trio.testing.wait_all_tasks_blocked()
        assert child.incarnation == 2
        assert sibling.incarnation == 1
        assert sibling.statistics().state is actors.ActorState.RUNNING
        sup.cancel()
    assert crashes == [1]
    assert _log.failures() > failures


async def test_unconfigured_logging_to_a_full_disk_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unconfigured structlog writes warnings to stderr: a full disk there changes nothing."""
    monkeypatch.setattr(sys, "stderr", FullDisk())

    async def flaky() -> None:
        if actors.current_actor().incarnation < 3:
            raise Boom
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        child = sup.spawn(flaky)
        await trio.testing.wait_all_tasks_blocked()
        assert child.incarnation == 3
        sup.cancel()


async def test_a_listener_error_outside_actors_survives_a_failing_sink(broken_sink: None) -> None:
    """The dispatcher (a trio system task) logs a failing listener; logging that raises
    must not end the run with TrioInternalError: later messages are still dispatched."""
    channel = MessageChannel()
    seen: list[object] = []

    def listener(event: actors.MessageEvent) -> None:
        seen.append(event.data)
        raise Boom

    channel.port2.onmessage = listener
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [1, 2]
    channel.port1.close()


class Unprintable:
    """A callable listener whose repr raises (it has no __qualname__ either)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: actors.MessageEvent) -> None:
        self.calls += 1
        raise Boom

    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")


async def test_a_listener_whose_repr_raises_is_reported_by_its_type(
    logs: list[dict[str, Any]],
) -> None:
    """Naming a failing listener whose repr raises neither raises nor stops dispatch."""
    channel = MessageChannel()
    listener = Unprintable()
    channel.port2.onmessage = listener
    channel.port1.post_message(1)
    channel.port1.post_message(2)
    await trio.testing.wait_all_tasks_blocked()
    assert listener.calls == 2
    failed = [e for e in logs if e["event"] == "event_listener_failed"]
    assert [e["listener"] for e in failed] == ["<Unprintable object>"] * 2
    channel.port1.close()


async def test_a_crash_whose_str_raises_is_logged_and_restarted(
    logs: list[dict[str, Any]],
) -> None:
    """A crash whose ``str()`` raises still gives a give-up line naming its type."""

    class Garbled(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    async def garbled() -> None:
        raise Garbled

    async def tree() -> None:
        async with open_supervisor(max_restarts=0) as sup:
            sup.spawn(garbled, restart=Restart.PERMANENT)

    with pytest.raises(actors.TooManyRestartsError):
        await tree()
    [gave_up] = [e for e in logs if e["event"] == "supervisor_gave_up"]
    assert gave_up["crash"].endswith("Garbled")


def test_a_failure_of_logging_is_reported_once(
    broken_sink: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first failure of logging in a process is reported once on the original stderr."""
    monkeypatch.setattr(_log, "_failed", 0)
    monkeypatch.setattr(sys, "__stderr__", sys.stderr)  # the captured stream, for the test
    _log.error("first")
    _log.error("second")
    err = capsys.readouterr().err
    assert err.count("actors: logging 'first' raised BrokenPipeError") == 1
    assert "second" not in err
    assert _log.failures() == 2
