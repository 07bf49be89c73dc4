import trio

import actors
from actors import MessageChannel, open_supervisor


async def router(requests, workers):
    n = 0
    async for event in requests:
        worker = workers[n % len(workers)]
        worker.post_message(event.data, transfer=[event.ports[-1]])  # pass the reply port on
        n += 1


async def worker(jobs):
    me = actors.current_actor()
    async for event in jobs:
        event.reply(f"{me.name} squared {event.data}: {event.data**2}")


async def main():
    front, lines = MessageChannel(), [MessageChannel(), MessageChannel()]
    async with open_supervisor() as sup:
        sup.spawn(router, front.port2, [line.port1 for line in lines])  # ports in a list move too
        for line in lines:
            sup.spawn(worker, line.port2)
        for n in range(4):
            print(await actors.ask(front.port1, n))
        sup.cancel()


trio.run(main)
