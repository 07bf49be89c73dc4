"""What actors and supervisors log, with the actor's path bound as context."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
import structlog.testing
import trio
import trio.testing

import actors
from actors import MessageChannel, MessagePort, Restart, open_supervisor


class Boom(Exception):
    """The crash the tests' actors raise."""


@pytest.fixture
def events() -> Iterator[list[MutableMapping[str, Any]]]:
    """Captured events, with structlog's contextvars merged in as an application would."""
    capture = structlog.testing.LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    yield capture.entries
    structlog.reset_defaults()


async def test_the_life_of_an_actor_is_logged(events: list[MutableMapping[str, Any]]) -> None:
    """started, crashed (with the exception), restarted (with intensity left), stopped."""
    crash = trio.Event()

    async def worker() -> None:
        if actors.current_actor().incarnation == 1:
            await crash.wait()
            raise Boom("first")
        await trio.sleep_forever()

    async with open_supervisor(max_restarts=2) as sup:
        sup.spawn(worker)
        await trio.testing.wait_all_tasks_blocked()
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    mine = [e for e in events if e.get("actor") == "root/worker"]
    assert [(e["event"], e["log_level"]) for e in mine] == [
        ("actor_started", "debug"),
        ("actor_crashed", "error"),
        ("actor_restarted", "info"),
        ("actor_started", "debug"),
        ("actor_stopped", "debug"),
    ]
    crashed, restarted = mine[1], mine[2]
    assert isinstance(crashed["exc_info"], Boom)
    assert crashed["incarnation"] == 1
    assert (restarted["incarnation"], restarted["intensity_left"]) == (2, 1)


async def test_everything_logged_inside_an_actor_carries_its_path(
    events: list[MutableMapping[str, Any]],
) -> None:
    """The user's own events, in the actor's task, in tasks it starts, and in its handlers."""
    channel = MessageChannel()
    log = structlog.get_logger("app")

    async def helper() -> None:
        log.info("from_helper")

    async def db(port: MessagePort) -> None:
        log.info("from_task")
        port.onmessage = lambda event: log.info("from_handler")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(helper)
            await trio.sleep_forever()

    async def parent(port: MessagePort) -> None:
        async with open_supervisor() as sup:
            sup.spawn(db, port)

    async with open_supervisor() as sup:
        sup.spawn(parent, channel.port2)
        await trio.testing.wait_all_tasks_blocked()
        channel.port1.post_message("hi")
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()
    paths = {e["event"]: e.get("actor") for e in events if e["event"].startswith("from_")}
    assert paths == {
        "from_task": "root/parent/db",
        "from_helper": "root/parent/db",
        "from_handler": "root/parent/db",
    }


async def test_giving_up_is_logged(
    events: list[MutableMapping[str, Any]], autojump_clock: Any
) -> None:
    """supervisor_gave_up names the supervisor, the child and the last crash, whose
    traceback was logged once already (as actor_crashed), not twice."""

    async def flaky() -> None:
        await trio.sleep(1)
        raise Boom("again")

    async def tree() -> None:
        async with open_supervisor(max_restarts=1, name="jobs") as sup:
            sup.spawn(flaky)

    with pytest.raises(actors.TooManyRestartsError):
        await tree()
    [gave_up] = [e for e in events if e["event"] == "supervisor_gave_up"]
    assert gave_up["actor"] == "jobs"
    assert gave_up["child"] == "jobs/flaky"
    assert gave_up["log_level"] == "error"
    assert gave_up["crash"] == "Boom: again"
    assert "exc_info" not in gave_up
    assert len([e for e in events if "exc_info" in e]) == 2  # the two crashes, once each


async def test_by_default_only_crashes_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    """Unconfigured structlog: starts, restarts and stops are silent; a crash is on stderr."""

    async def crasher() -> None:
        raise Boom("shown")

    async with open_supervisor() as sup:
        sup.spawn(crasher, restart=Restart.TEMPORARY)
    out, err = capsys.readouterr()
    assert out == ""
    assert "actor_crashed" in err
    assert "Boom: shown" in err
    for quiet in ("actor_started", "actor_stopped", "actor_restarted"):
        assert quiet not in err
