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
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", key="time"),
        exception_summary,  # in production: structlog.processors.dict_tracebacks
        structlog.processors.JSONRenderer(sort_keys=True),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
)


async def worker(inbox: MessagePort) -> None:
    async for event in inbox:
        100 // event.data


async def main() -> None:
    structlog.contextvars.bind_contextvars(job="nightly")  # the actors inherit it
    channel = MessageChannel()
    try:
        async with actors.open_supervisor(name="batch", max_restarts=1) as supervisor:
            supervisor.spawn(worker, channel.port2)
            for _ in range(2):  # two crashes: one restart allowed, then it gives up
                channel.port1.post_message(0)
            await trio.testing.wait_all_tasks_blocked()
    except actors.TooManyRestartsError:
        pass


trio.run(main)
