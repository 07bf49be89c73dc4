import itertools
import logging

import structlog
import trio
import trio.testing

from actors import Backoff, MessageChannel, TooManyRestartsError, open_supervisor

# This script crashes a dozen times: keep the log quiet (the other scripts print it).
structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
)


# --8<-- [start:main]
async def crasher(starts):
    starts.post_message(trio.current_time())  # when this incarnation started
    raise ConnectionError("refused")


async def crash_loop(**limits):
    starts, began = MessageChannel(), trio.current_time()
    with trio.move_on_after(30):  # a crash loop that never gives up needs an end
        try:
            async with open_supervisor(
                backoff=Backoff(initial=1, factor=2, cap=5), **limits
            ) as sup:
                sup.spawn(crasher, starts.port1)
        except TooManyRestartsError:
            pass
    times = [event.data async for event in starts.port2]  # ends: its peer closed
    waits = [later - earlier for earlier, later in itertools.pairwise(times)]
    print("  waits:", " ".join(f"{wait:g}" for wait in waits))
    elapsed, gave_up = trio.current_time() - began, sup.statistics().gave_up
    print(f"  {len(times)} runs in {elapsed:g} seconds; gave up: {gave_up}")


async def main():
    print("the default intensity, 3 restarts within 5 seconds:")
    await crash_loop()
    print("max_restarts=5, within=30:")
    await crash_loop(max_restarts=5, within=30)


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
# --8<-- [end:main]
