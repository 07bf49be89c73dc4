import textwrap

import trio
import trio.testing

from actors import MessageChannel, TooManyRestartsError, open_supervisor


async def shout(inbox):
    async for event in inbox:
        inbox.post_message(event.data.upper())
    print("shout returns")


async def main():
    channel = MessageChannel()
    try:
        async with open_supervisor() as sup:
            handle = sup.spawn(shout, channel.port2)  # PERMANENT by default
            channel.port1.post_message("hello")
            print((await channel.port1.receive()).data)
            channel.port1.close()
    except TooManyRestartsError as exc:
        print(textwrap.fill(str(exc), width=80))  # wrapped to fit the page
    print(handle)


trio.run(main, clock=trio.testing.MockClock())  # trio's clock stands still
