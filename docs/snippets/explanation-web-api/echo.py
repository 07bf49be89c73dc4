import trio
import trio.testing

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    channel.port2.onmessage = lambda event: event.target.post_message(event.data.upper())
    channel.port1.onmessage = lambda event: print(event.data)
    channel.port1.post_message("hello")
    await trio.testing.wait_all_tasks_blocked()  # main waits; the dispatcher runs the handlers


trio.run(main)
