import os

import trio

import actors
from actors import Restart


class Counter:
    def __init__(self):
        self.count = 0

    def add(self, n):
        self.count += n
        return self.count

    def pid(self):
        return os.getpid()


async def counter_service(task_status=trio.TASK_STATUS_IGNORED):
    """Serves "counter" from a process of its own."""
    async with actors.serve("counter") as incoming:
        task_status.started()  # serving: whoever hears of it can connect
        await incoming.expose(Counter())


async def client(report):
    """Another process actor: connects by name, as it would in-process."""
    async with await actors.connect("counter") as port:
        counter = actors.wrap(port)
        report.post_message(await counter.add(10))


async def main():
    async with actors.open_supervisor() as sup:
        await sup.start(counter_service, process=True)
        async with await actors.connect("counter") as port:  # the root asks no one
            counter = actors.wrap(port)
            print("served from another process:", await counter.pid() != os.getpid())
            print(await counter.add(1))

            report = actors.MessageChannel()
            sup.spawn(client, report.port2, process=True, restart=Restart.TEMPORARY)
            print("a sibling process added 10:", (await report.port1.receive()).data)
            print(await counter.add(1))
        sup.cancel()


if __name__ == "__main__":  # the children import this file: only the parent runs main()
    trio.run(main)
