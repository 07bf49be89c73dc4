import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from actors import ActorState, TooManyRestartsError, open_supervisor


async def flaky():
    await trio.sleep(1)
    raise ConnectionError("lost")


@pytest.mark.trio
async def test_the_fourth_restart_within_five_seconds_gives_up(autojump_clock):
    with capture_logs() as logs, pytest.raises(TooManyRestartsError) as info:
        async with open_supervisor(max_restarts=3, within=5) as sup:
            handle = sup.spawn(flaky)
    assert trio.current_time() == 4  # crashes at 1, 2, 3 and 4 seconds
    assert handle.statistics().state is ActorState.STOPPED
    assert isinstance(info.value.__cause__, ConnectionError)
    errors = [entry["event"] for entry in logs if entry["log_level"] == "error"]
    assert errors == ["actor_crashed"] * 4 + ["supervisor_gave_up"]


@pytest.mark.trio
async def test_crashes_spread_out_never_give_up(autojump_clock):
    with capture_logs():
        async with open_supervisor(max_restarts=3, within=2) as sup:
            handle = sup.spawn(flaky)
            await trio.sleep(100.5)
            assert handle.incarnation == 101
            assert sup.statistics().intensity_left == 1  # restarts at 99 and 100 s
            sup.cancel()


if __name__ == "__main__":
    for test in [
        test_the_fourth_restart_within_five_seconds_gives_up,
        test_crashes_spread_out_never_give_up,
    ]:
        clock = trio.testing.MockClock(autojump_threshold=0)
        trio.run(test, clock, clock=clock)
        print(test.__name__, "passed")
