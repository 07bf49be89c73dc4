import trio
import trio.testing

import actors
from actors import MessageChannel, open_supervisor


async def front(requests, worker):
    async for event in requests:
        worker.post_message(event.data, transfer=[event.ports[-1]])


async def worker(jobs):
    async for event in jobs:
        print(f"worker: holding the reply port for {event.data!r}")
        await trio.sleep_forever()  # never answers


async def ask_and_report(port, message):
    try:
        print("answer:", await actors.ask(port, message))
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        print(f"{message}: {type(exc).__name__}: {exc}")


async def main():
    requests, work = MessageChannel(), MessageChannel()
    async with open_supervisor() as sup:
        front_handle = sup.spawn(front, requests.port2, work.port1)
        worker_handle = sup.spawn(worker, work.port2)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask_and_report, requests.port1, "first")
            await trio.testing.wait_all_tasks_blocked()  # the worker has it
            worker_handle.cancel()  # the worker stops for good: its ports close

        # The front posts this one to the worker's closed port:
        await ask_and_report(requests.port1, "second")

        front_handle.cancel()
        await front_handle.wait()
        await ask_and_report(requests.port1, "third")  # nobody at the other end

        requests.port1.close()
        await ask_and_report(requests.port1, "fourth")  # our own port is closed


trio.run(main)
