import trio

from actors import MessageChannel, Restart, open_supervisor


async def shout(inbox):
    async for event in inbox:  # the actor loop
        inbox.post_message(event.data.upper())
    print("shout: the peer is closed, so I return")


async def main():
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(shout, channel.port2, restart=Restart.TRANSIENT)
        print(handle)
        print("main's port2:", channel.port2)  # it moved into the actor
        for word in ("hello", "actors"):
            channel.port1.post_message(word)
            print((await channel.port1.receive()).data)
        channel.port1.close()  # shout's loop ends
    print(handle)  # the block ended once its only child had stopped for good


trio.run(main)
