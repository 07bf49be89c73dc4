import logging

import structlog
import trio
import trio.testing

from actors import MessageChannel, TooManyRestartsError, open_supervisor

# Keep the crash logs out of this example (see the restart example below for them).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def flaky():
    await trio.sleep(1)
    raise ConnectionError(f"lost at {trio.current_time():g}s")


async def steady(port):
    await trio.sleep_forever()


async def main():
    watcher = MessageChannel()
    try:
        async with open_supervisor(max_restarts=3, within=5) as sup:
            handle = sup.spawn(flaky)
            sup.spawn(steady, watcher.port2)
    except TooManyRestartsError as error:
        print(error)
        print(repr(error.__cause__), "|", error.path, error.max_restarts, error.within)
    print(handle.statistics().state, "at incarnation", handle.incarnation)
    try:
        await watcher.port1.receive()
    except trio.EndOfChannel:
        print("steady was stopped too: its port closed")


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
