import logging
import sys

import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, MessagePort

logging.basicConfig(format="%(name)s %(message)s", level=logging.DEBUG, stream=sys.stdout)
logging.getLogger("actors").setLevel(logging.INFO)  # the library: no debug events
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,  # asks the stdlib logger about the level
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.KeyValueRenderer(key_order=["level", "event", "actor"]),
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
)
log = structlog.get_logger("myapp")


async def worker(inbox: MessagePort) -> None:
    async for event in inbox:
        log.debug("dividing", n=event.data)
        log.debug("divided", result=100 // event.data)


async def main() -> None:
    channel = MessageChannel()
    async with actors.open_supervisor() as supervisor:
        supervisor.spawn(worker, channel.port2)
        channel.port1.post_message(0)
        await trio.testing.wait_all_tasks_blocked()
        supervisor.cancel()


trio.run(main)
