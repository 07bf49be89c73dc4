import logging

import structlog
import trio
import trio.testing

from actors import MessageChannel, open_supervisor

# Keep the crash logs out of this example (see Logging below).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def worker(inbox):
    session = MessageChannel()  # two more ports it owns while this incarnation runs
    async for event in inbox:
        100 // event.data


async def main():
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(worker, channel.port2)
        channel.port1.post_message(0)
        await trio.testing.wait_all_tasks_blocked()
        print(handle.name, handle.path, handle.incarnation, handle.restart)
        print(handle.statistics())
        handle.cancel()
        await handle.wait()
        print(handle.statistics().state, sup.children)


trio.run(main)
