import os

import structlog
import trio

import actors


async def worker(jobs: actors.MessagePort, results: actors.MessagePort) -> None:
    me = actors.current_actor()
    async for event in jobs:
        if event.data == 3 and me.incarnation == 1:
            os._exit(1)  # dies with job 3 read, and jobs 4 and 5 queued, unread
        results.post_message(f"job {event.data} done by incarnation {me.incarnation}")


async def main() -> None:
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # quiet, for the page
    jobs, results = actors.MessageChannel(), actors.MessageChannel()
    async with actors.open_supervisor() as sup:
        sup.spawn(worker, jobs.port2, results.port2, process=True)
        for job in range(1, 6):
            jobs.port1.post_message(job)
        for _ in range(4):  # job 3 was read, then lost with the process that read it
            print((await results.port1.receive()).data)
        sup.cancel()


if __name__ == "__main__":
    trio.run(main)
