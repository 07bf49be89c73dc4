import logging
import sys

import structlog
import trio

from actors import MessageChannel

logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s %(message)s")
structlog.configure(
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    processors=[structlog.processors.KeyValueRenderer(key_order=["event", "port"])],
)


async def main():
    channel = MessageChannel()
    channel.port1.post_message("never read")
    channel.port2.close()
    channel.port1.close()


trio.run(main)
