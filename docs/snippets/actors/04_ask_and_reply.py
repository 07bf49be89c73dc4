import logging

import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, open_supervisor

# Keep the crash logs out of this example (see Logging below).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def slow(inbox):
    async for event in inbox:
        if event.data == "crash":
            raise RuntimeError("crashed holding the reply port")
        await trio.sleep(1)
        print("slow: the asker was still waiting:", event.reply("done"))


async def main():
    channel = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(slow, channel.port2)
        with trio.move_on_after(0.5):
            await actors.ask(channel.port1, "job")
        print("main: gave up waiting")
        await trio.sleep(1)
        try:
            await actors.ask(channel.port1, "crash")
        except trio.BrokenResourceError as exc:
            print("main: BrokenResourceError:", exc)
        print("main:", await actors.ask(channel.port1, "job"))  # the restarted actor answers
        sup.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # virtual time: no waiting
