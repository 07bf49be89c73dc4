import logging

import structlog
import trio
import trio.testing

from actors import TooManyRestartsError, open_supervisor

structlog.configure(
    processors=[
        structlog.processors.KeyValueRenderer(
            key_order=["event", "actor", "incarnation", "intensity_left"],
            drop_missing=True,
        ),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
)


# --8<-- [start:main]
async def flaky():
    await trio.sleep(1)
    raise ConnectionError(f"at {trio.current_time():g}s")


async def main():
    try:
        async with open_supervisor(max_restarts=3, within=5) as sup:
            sup.spawn(flaky)
    except TooManyRestartsError as error:
        print("main:", error)
        print("main: the last crash:", repr(error.__cause__))


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
# --8<-- [end:main]
