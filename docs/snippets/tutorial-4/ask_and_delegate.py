import trio

import actors
from actors import MessageChannel, Restart, open_supervisor


async def front(requests, workers):
    async for event in requests:
        op, text = event.data
        print(f"front: {text!r} goes to the {op} worker")
        reply_port = event.ports[-1]  # put there by ask()
        workers[op].post_message(text, transfer=[reply_port])


async def shout(jobs):
    async for event in jobs:
        event.reply(event.data.upper())


async def count(jobs):
    async for event in jobs:
        event.reply(len(event.data.split()))


async def main():
    requests = MessageChannel()
    to_shout, to_count = MessageChannel(), MessageChannel()
    async with open_supervisor() as sup:
        workers = {"shout": to_shout.port1, "count": to_count.port1}
        sup.spawn(front, requests.port2, workers, restart=Restart.TRANSIENT)
        sup.spawn(shout, to_shout.port2, restart=Restart.TRANSIENT)
        sup.spawn(count, to_count.port2, restart=Restart.TRANSIENT)

        for request in [("shout", "hello there"), ("count", "one two three")]:
            print("client:", await actors.ask(requests.port1, request))
        requests.port1.close()


trio.run(main)
