import logging

import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, MessagePort


def exception_summary(logger, method_name, event_dict):
    """For this page only: an exception on one line, so the output stays the same."""
    error = event_dict.pop("exc_info", None)
    if isinstance(error, BaseException):
        event_dict["error"] = repr(error)
    return event_dict


structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,  # adds `actor` inside actors
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S"),
        exception_summary,  # leave it out to get the traceback
        structlog.dev.ConsoleRenderer(colors=False),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
)
log = structlog.get_logger()


async def worker(inbox: MessagePort) -> None:
    async for event in inbox:
        log.info("dividing", n=event.data)  # your own events get `actor` too
        log.info("divided", result=100 // event.data)


async def main() -> None:
    channel = MessageChannel()
    async with actors.open_supervisor(name="app") as supervisor:
        supervisor.spawn(worker, channel.port2)
        channel.port1.post_message(0)  # crashes incarnation 1
        await trio.testing.wait_all_tasks_blocked()
        supervisor.cancel()


trio.run(main)
