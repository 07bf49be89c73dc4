"""Supervised worker: crashes, restarts, the messages that wait, and giving up.

A worker computes ``100 // n`` for every ``n`` it receives, so ``n == 0`` crashes it. It runs
under a ``ONE_FOR_ONE`` supervisor as a ``PERMANENT`` child:

1. A crash restarts it. Its ports belong to its slot in the supervisor, not to the crashed
   run, so the messages still queued when it crashed are handled by the next incarnation,
   and the main task never sees the port close.
2. A flood of zeros makes it crash again and again: more than ``max_restarts`` restarts
   within ``within`` seconds, and the supervisor gives up. It stops the worker, closes its
   ports, and ``async with`` raises ``TooManyRestartsError``, chained to the last crash.

The library logs each crash and restart with structlog. ``configure_logging`` renders them
as one line each, on stderr, instead of a traceback.

Run it (after ``python3 dev.py setup``): ``.venv/bin/python examples/supervised_worker.py``.
"""

from __future__ import annotations

import logging
import sys

import structlog
import trio
from structlog.typing import EventDict, WrappedLogger

import actors
from actors import MessageChannel, MessagePort, TooManyRestartsError


def one_line_errors(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """A structlog processor: show a logged exception as its repr, without the traceback."""
    error = event.pop("exc_info", None)
    if error:
        event["error"] = repr(error if isinstance(error, BaseException) else sys.exc_info()[1])
    return event


def configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,  # the library binds `actor` there
            structlog.processors.add_log_level,
            one_line_errors,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


# --8<-- [start:worker]
async def worker(inbox: MessagePort, results: MessagePort) -> None:
    """Answer ``100 // n`` for each ``n``; ``n == 0`` raises ZeroDivisionError."""
    me = actors.current_actor()
    print(f"  worker incarnation {me.incarnation} started")
    async for event in inbox:
        n = event.data
        results.post_message({"n": n, "answer": 100 // n, "incarnation": me.incarnation})
    # --8<-- [end:worker]


# --8<-- [start:main]
async def main() -> None:
    configure_logging()
    jobs, results = MessageChannel(), MessageChannel()
    try:
        async with actors.open_supervisor(max_restarts=3, within=1.0) as supervisor:
            handle = supervisor.spawn(worker, jobs.port2, results.port1)
            print("posting 4, 5, 0, 20, 50 at once: the 0 crashes incarnation 1")
            for n in [4, 5, 0, 20, 50]:
                jobs.port1.post_message(n)
            for _ in range(4):
                result = (await results.port2.receive()).data
                print(
                    f"  100 // {result['n']} = {result['answer']}"
                    f"  (incarnation {result['incarnation']})"
                )
            print("the 0 died with incarnation 1; 20 and 50 waited in the port for incarnation 2")
            print("posting ten zeros")
            for _ in range(10):
                jobs.port1.post_message(0)
            await handle.wait()  # the supervisor gives up, which cancels this block
    except TooManyRestartsError as error:
        print(f"gave up: {error}")
        print(f"  last crash: {error.__cause__!r}")
        stats = handle.statistics()
        print(f"  worker: {stats.state.value} after {stats.restarts} restarts")
        print(f"supervised_worker done: TooManyRestartsError at incarnation {handle.incarnation}")
    # --8<-- [end:main]


if __name__ == "__main__":
    trio.run(main)
