import logging

import structlog
import trio
import trio.testing

from actors import TooManyRestartsError, open_supervisor

# Keep the crash logs out of this example (see the restart example below for them).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def connection():
    await trio.sleep(1)
    raise ConnectionError(f"lost at {trio.current_time():g}s")


async def db():
    async with open_supervisor(max_restarts=2, within=10) as sup:  # path: root/db
        sup.spawn(connection)


async def main():
    try:
        async with open_supervisor(max_restarts=1, within=60) as root:
            handle = root.spawn(db)
    except TooManyRestartsError as error:
        cause = error
        while cause is not None:
            print(f"{type(cause).__name__}: {cause}")
            cause = cause.__cause__
    print(f"db ran {handle.incarnation} times; gave up at {trio.current_time():g}s")


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
