import logging

import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, open_supervisor

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.KeyValueRenderer(key_order=["event", "actor"]),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
)


async def worker(jobs, results):
    me = actors.current_actor()
    async for event in jobs:
        n = event.data
        results.post_message(f"100 // {n} = {100 // n}  (incarnation {me.incarnation})")


async def main():
    jobs, results = MessageChannel(), MessageChannel()
    async with open_supervisor(name="app") as sup:
        sup.spawn(worker, jobs.port2, results.port1)
        for n in (4, 0, 20, 50):  # the 0 crashes incarnation 1
            jobs.port1.post_message(n)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(3):
            print((await results.port2.receive()).data)
        sup.cancel()


trio.run(main)
