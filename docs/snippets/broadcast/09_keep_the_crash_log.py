import logging

import structlog
import trio
import trio.testing

import actors
from actors import Backoff, BroadcastChannel, open_supervisor

# Keep the crash log out of this example (see Logging in actors.md).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def watcher():
    me = actors.current_actor()
    async with BroadcastChannel("ticks") as ticks:  # closed when the incarnation ends
        async for event in ticks:
            print(f"t={trio.current_time():g}s incarnation {me.incarnation} got {event.data}")
            if event.data == "tick 2":
                raise RuntimeError("tick 2 is bad luck")


async def main():
    ticks = BroadcastChannel("ticks")
    async with open_supervisor(backoff=Backoff(initial=1.5)) as sup:
        sup.spawn(watcher)
        await trio.testing.wait_all_tasks_blocked()
        for n in range(6):
            ticks.post_message(f"tick {n}")
            await trio.sleep(1)
        sup.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
