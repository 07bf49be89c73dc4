from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import structlog.testing
import trio.testing

import actors
from actors import MessageChannel, MessagePort

Logs = list[dict[str, Any]]


@pytest.fixture
def logs() -> Iterator[Logs]:
    """The events logged during a test, with `actor`; then structlog as it was."""
    was_configured = structlog.is_configured()
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as entries:
        yield entries
    if not was_configured:
        structlog.reset_defaults()  # capture_logs() leaves structlog "configured"


async def divide(inbox: MessagePort) -> None:
    async for event in inbox:
        100 // event.data


async def test_a_crash_is_logged_and_the_worker_restarted(logs: Logs) -> None:
    channel = MessageChannel()
    async with actors.open_supervisor(name="app") as supervisor:
        supervisor.spawn(divide, channel.port2)
        channel.port1.post_message(0)
        await trio.testing.wait_all_tasks_blocked()
        supervisor.cancel()

    events = [e for e in logs if e["event"].startswith("actor_")]
    life = [(e["event"], e["incarnation"]) for e in events]
    assert life == [
        ("actor_started", 1),
        ("actor_crashed", 1),
        ("actor_restarted", 2),
        ("actor_started", 2),
        ("actor_stopped", 2),
    ]
    assert {e["actor"] for e in events} == {"app/divide"}  # needs merge_contextvars
    crash = next(e for e in logs if e["event"] == "actor_crashed")
    assert crash["log_level"] == "error"
    assert isinstance(crash["exc_info"], ZeroDivisionError)  # the exception itself
