import logging

import structlog
import trio
import trio.testing

from actors import MessageChannel, open_supervisor

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,  # adds the `actor` key
        structlog.processors.add_log_level,
        structlog.processors.KeyValueRenderer(
            key_order=["level", "event", "actor"], drop_missing=True
        ),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
)
log = structlog.get_logger()


async def worker(inbox):
    log.info("ready")
    async for event in inbox:
        log.info("dividing", n=event.data)
        100 // event.data


async def main():
    channel = MessageChannel()
    async with open_supervisor(name="app") as sup:
        sup.spawn(worker, channel.port2)
        channel.port1.post_message(0)
        await trio.testing.wait_all_tasks_blocked()
        sup.cancel()


trio.run(main)
