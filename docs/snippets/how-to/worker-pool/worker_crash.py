import logging
import sys

import structlog
import trio

import actors
from actors import ArrayBuffer, MessageChannel, MessagePort, Restart

structlog.configure(  # the library's events on one line each, on stderr
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.KeyValueRenderer(key_order=["level", "event", "actor"]),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
)


async def worker(inbox: MessagePort) -> None:
    """Upper-case the UTF-8 text in each job; bytes that are not UTF-8 crash it."""
    me = actors.current_actor()
    async for job in inbox:
        text = bytes(job.data).decode()  # b"\xff" raises UnicodeDecodeError
        result = ArrayBuffer(text.upper().encode())
        by = f"{me.name}#{me.incarnation}"
        job.reply({"text": result, "by": by}, transfer=[result])


async def main() -> None:
    jobs = [b"alpha", b"beta", b"\xff", b"delta", b"gamma"]
    replies: dict[int, str] = {}

    async def submit(i, pool, task_status=trio.TASK_STATUS_IGNORED):
        buffer = ArrayBuffer(jobs[i])  # moves to the worker: keep jobs[i] to retry
        task_status.started()  # ask() posts before it waits: jobs go out in order
        try:
            reply = await actors.ask(pool[i % len(pool)], buffer, transfer=[buffer])
        except trio.BrokenResourceError:
            replies[i] = f"failed: its worker died (buffer detached: {buffer.detached})"
        else:
            replies[i] = f"{bytes(reply['text']).decode()} from {reply['by']}"

    async with actors.open_supervisor(name="pool") as supervisor:
        pool, transient = [], Restart.TRANSIENT
        for n in range(2):
            channel = MessageChannel()
            supervisor.spawn(worker, channel.port2, name=f"w{n}", restart=transient)
            pool.append(channel.port1)
        async with trio.open_nursery() as nursery:  # every job at once
            for i in range(len(jobs)):
                await nursery.start(submit, i, pool)
        for i in range(len(jobs)):
            print(f"job {i} {jobs[i]!r}: {replies[i]}")
        for port in pool:
            port.close()  # each worker's loop ends; TRANSIENT, so it stops for good


trio.run(main)
