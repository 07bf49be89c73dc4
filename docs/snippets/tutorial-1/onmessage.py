import trio
import trio.testing

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    # Setting onmessage starts the port's queue.
    channel.port2.onmessage = lambda event: print("got", event.data)

    channel.port1.post_message("one")
    channel.port1.post_message("two")
    print("posted both; no handler has run yet")

    await trio.testing.wait_all_tasks_blocked()  # let the handlers run
    print("done")


trio.run(main)
