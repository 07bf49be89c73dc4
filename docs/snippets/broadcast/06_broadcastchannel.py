import trio
import trio.testing

from actors import BroadcastChannel


async def main():
    first, second, third = (BroadcastChannel("news") for _ in range(3))
    weather = BroadcastChannel("weather")  # another name: another group

    message = {"headline": "rain tomorrow"}
    first.post_message(message)
    late = BroadcastChannel("news")  # made after the post: does not get it

    for name, channel in [("second", second), ("third", third)]:
        event = await channel.receive()
        print(f"{name}: {event.data} (a copy: {event.data is not message})")
    for name, channel in [("first", first), ("late", late), ("weather", weather)]:
        with trio.move_on_after(1):
            await channel.receive()
            print(f"{name}: got something?")
        print(f"{name}: nothing")

    async with BroadcastChannel(42) as answers:  # the name goes through str(); closed on exit
        other = BroadcastChannel("42")
        other.onmessage = lambda event: print("handler:", event.data, event.target, event.source)
        answers.post_message("no start() needed")
        await trio.testing.wait_all_tasks_blocked()
    print(answers, other)
    other.close()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
