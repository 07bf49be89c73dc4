import trio

import actors
from actors import Restart, open_supervisor


async def counter():
    """Serves "counter": each client gets its own port and its own count."""
    async with actors.serve("counter") as incoming, trio.open_nursery() as nursery:
        async for port in incoming:  # one fresh port per client
            nursery.start_soon(count_for, port)


async def count_for(port):
    count = 0
    async for event in port:
        count += event.data
        event.reply(count)


async def main():
    async with open_supervisor() as sup:
        sup.spawn(counter, restart=Restart.TRANSIENT)
        alice = await actors.connect("counter", wait=True)
        bob = await actors.connect("counter")
        print("alice:", await actors.ask(alice, 1), await actors.ask(alice, 1))
        print("bob:  ", await actors.ask(bob, 10))
        try:
            await actors.connect("no such service")
        except actors.ServiceNotFoundError as error:
            print("LookupError:", error)
        sup.cancel()


trio.run(main)
