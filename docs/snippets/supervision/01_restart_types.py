import logging

import structlog
import trio
import trio.testing

import actors
from actors import Restart, open_supervisor

# Keep the crash logs out of this example (see the restart example below for them).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def job(ending):
    if actors.current_actor().incarnation == 1:
        if ending == "crash":
            raise RuntimeError("crash")
        return
    await trio.sleep_forever()  # later incarnations keep running


async def main():
    async with open_supervisor() as sup:
        handles = [
            sup.spawn(job, ending, name=f"{restart.name.lower()}-{ending}", restart=restart)
            for restart in Restart
            for ending in ("return", "crash")
        ]
        await trio.testing.wait_all_tasks_blocked()
        for handle in handles:
            state = handle.statistics().state.value
            print(f"{handle.name:17} {state:8} incarnation {handle.incarnation}")
        sup.cancel()


trio.run(main)
