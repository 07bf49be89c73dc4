import trio
import trio.testing

import actors
from actors import MessageChannel, Restart, open_supervisor


def now():
    return f"t={trio.current_time():g}"


async def slow(inbox):
    async for event in inbox:
        await trio.sleep(event.data)  # "work" for that many seconds
        waiting = event.reply("done")
        print(now(), f"slow: replied; the asker was waiting: {waiting}")


async def main():
    channel = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(slow, channel.port2, restart=Restart.TRANSIENT)

        with trio.fail_after(5):
            answer = await actors.ask(channel.port1, 1)
        print(now(), "main:", answer)

        try:
            with trio.fail_after(2):
                await actors.ask(channel.port1, 4)
        except trio.TooSlowError:
            print(now(), "main: TooSlowError")

        with trio.move_on_after(1) as scope:
            await actors.ask(channel.port1, 4)
        print(now(), "main: gave up:", scope.cancelled_caught)
        channel.port1.close()  # slow finishes what it has, then its loop ends


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
