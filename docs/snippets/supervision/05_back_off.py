import logging

import structlog
import trio
import trio.testing

import actors
from actors import Backoff, MessageChannel, open_supervisor

# Keep the crash logs out of this example (see the restart example below for them).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def flaky(inbox):
    print(f"t={trio.current_time():g}s incarnation {actors.current_actor().incarnation}")
    raise ConnectionError("database unreachable")


async def main():
    channel = MessageChannel()
    backoff = Backoff(initial=1, factor=2, cap=5)
    async with open_supervisor(max_restarts=10, within=60, backoff=backoff) as sup:
        handle = sup.spawn(flaky, channel.port2)
        await trio.sleep(12.5)
        channel.port1.post_message("for the next incarnation")
        stats = handle.statistics()
        print(stats.state, f"restarts={stats.restarts} queued={stats.queued}")
        sup.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
