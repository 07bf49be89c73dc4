import os

import trio

import actors


def count_primes(below: int) -> int:
    """CPU-bound work: it holds the GIL the whole time."""
    return sum(1 for n in range(2, below) if all(n % d for d in range(2, int(n**0.5) + 1)))


async def worker(jobs: actors.MessagePort) -> None:
    async for event in jobs:
        event.reply((count_primes(event.data), os.getpid()))


async def main() -> None:
    channels = [actors.MessageChannel() for _ in range(2)]
    async with actors.open_supervisor() as sup:
        for channel in channels:
            sup.spawn(worker, channel.port2, process=True)
        results: dict[int, int] = {}
        pids: set[int] = set()

        async def ask(port: actors.MessagePort, limit: int) -> None:
            count, pid = await actors.ask(port, limit)
            results[limit] = count
            pids.add(pid)

        async with trio.open_nursery() as nursery:
            for i, limit in enumerate([20_000, 30_000, 40_000, 50_000]):
                port = channels[i % 2].port1  # round robin over the two processes
                nursery.start_soon(ask, port, limit)
        for limit, count in sorted(results.items()):
            print(f"primes below {limit}: {count}")
        print(
            "processes that did the work:", len(pids), "| this one among them:", os.getpid() in pids
        )
        sup.cancel()


if __name__ == "__main__":
    trio.run(main)
