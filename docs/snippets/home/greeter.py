import trio

import actors
from actors import MessageChannel, Restart


async def greeter(inbox):
    async for event in inbox:  # ends when the peer closes its port
        event.reply(f"hello, {event.data}!")  # answers the ask() that sent it


async def main():
    channel = MessageChannel()
    async with actors.open_supervisor() as supervisor:
        # port2 moves into the actor; TRANSIENT: a normal return ends it for good
        supervisor.spawn(greeter, channel.port2, restart=Restart.TRANSIENT)
        print(await actors.ask(channel.port1, "world"))  # hello, world!
        channel.port1.close()  # greeter's loop ends, then the block


if __name__ == "__main__":  # needed once an actor runs in another process (process=True)
    trio.run(main)
