import logging
import sys

import structlog
import trio

import actors
from actors import MessageChannel, MessagePort, Restart

structlog.configure(  # the library's events on one line each, on stderr
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.KeyValueRenderer(key_order=["level", "event", "actor"]),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
)


async def source(items: list[str], out: MessagePort) -> None:
    for item in items:
        out.post_message(item)
    out.close()  # end of stream, sent while `double` is still working


async def double(inbox: MessagePort, out: MessagePort) -> None:
    incarnation = actors.current_actor().incarnation
    async for event in inbox:
        doubled = int(event.data) * 2  # "x" raises ValueError
        out.post_message(f"{doubled} (incarnation {incarnation})")
    out.close()


async def main() -> None:
    a, b = MessageChannel(), MessageChannel()
    async with actors.open_supervisor() as supervisor:
        items = ["1", "2", "x", "4", "5"]
        supervisor.spawn(source, items, a.port1, restart=Restart.TRANSIENT)
        supervisor.spawn(double, a.port2, b.port1, restart=Restart.TRANSIENT)
        async for event in b.port2:  # ends when `double` closes its output
            print(event.data)
    print("the stream ended; the block exited")


trio.run(main)
