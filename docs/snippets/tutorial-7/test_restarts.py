"""Restart intensity, back-off and timeouts on the autojump clock, with logs."""

# --8<-- [start:logs]
import pytest
import structlog
import structlog.testing
import trio

from actors import (
    ActorState,
    Backoff,
    MessageChannel,
    TooManyRestartsError,
    open_supervisor,
)


@pytest.fixture
def logs():
    """The structlog events logged during the test, as dicts.

    capture_logs() leaves structlog configured when it ends, which would switch
    actors from its quiet default to structlog's for every later test: undo that.
    """
    was_configured = structlog.is_configured()
    with structlog.testing.capture_logs() as entries:
        yield entries
    if not was_configured:
        structlog.reset_defaults()
    # --8<-- [end:logs]


# --8<-- [start:give_up]
async def flaky(seconds):
    """Crash `seconds` after each start."""
    await trio.sleep(seconds)
    raise ConnectionError(f"lost at t={trio.current_time():g}")


async def test_four_crashes_within_five_seconds_give_up(autojump_clock, logs):
    with pytest.raises(TooManyRestartsError) as info:
        async with open_supervisor(max_restarts=3, within=5) as sup:
            handle = sup.spawn(flaky, 1)
    assert trio.current_time() == 4  # crashes at 1, 2, 3 and 4 s; no real time
    assert str(info.value.__cause__) == "lost at t=4"
    assert sup.statistics().gave_up
    assert handle.statistics().state is ActorState.STOPPED
    assert handle.statistics().restarts == 3

    errors = [entry["event"] for entry in logs if entry["log_level"] == "error"]
    assert errors == ["actor_crashed"] * 4 + ["supervisor_gave_up"]
    restarts = [entry for entry in logs if entry["event"] == "actor_restarted"]
    assert [entry["intensity_left"] for entry in restarts] == [2, 1, 0]
    assert {entry["actor"] for entry in restarts} == {"root/flaky"}


async def test_crashes_spread_out_never_give_up(autojump_clock, logs):
    with trio.move_on_after(61):  # a minute of crashes, every 2 seconds
        async with open_supervisor(max_restarts=3, within=5) as sup:
            handle = sup.spawn(flaky, 2)
    assert handle.statistics().restarts == 30
    assert not sup.statistics().gave_up
    assert sup.statistics().intensity_left == 0  # restarts at 56, 58 and 60 s: all within 5 s
    # --8<-- [end:give_up]


# --8<-- [start:backoff]
async def crash_at_once(report):
    report.post_message(trio.current_time())  # when this incarnation started
    raise ConnectionError("refused")


async def test_backoff_doubles_the_wait_up_to_its_cap(autojump_clock, logs):
    report = MessageChannel()
    with pytest.raises(TooManyRestartsError):
        async with open_supervisor(
            max_restarts=4, within=60, backoff=Backoff(initial=1, factor=2, cap=4)
        ) as sup:
            sup.spawn(crash_at_once, report.port1)
    starts = [event.data async for event in report.port2]  # ends: its peer closed
    assert starts == [0, 1, 3, 7, 11]  # waits of 1, 2, 4, then 4 again (the cap)
    # --8<-- [end:backoff]
