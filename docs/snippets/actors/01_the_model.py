import trio

import actors
from actors import MessageChannel, Restart, open_supervisor


async def counter(inbox):
    total = 0
    async for event in inbox:  # ends when the peer port closes
        total += event.data
        event.reply(total)  # answers the ask() that sent the message


async def main():
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(counter, channel.port2, restart=Restart.TRANSIENT)
        print(handle, channel.port2)  # port2 now belongs to the actor
        for n in (1, 2, 3):
            print("total:", await actors.ask(channel.port1, n))
        channel.port1.close()  # counter's loop ends; a TRANSIENT child that returns is done
    print(handle)  # the block exited once every child had stopped for good


trio.run(main)
