import trio
import trio.testing

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    survivor = channel.port1
    survivor.onclose = lambda event: print("peer collected")
    survivor.start()  # onclose alone does not start the queue

    del channel  # the last reference to port2
    await trio.testing.wait_all_tasks_blocked()
    print(survivor.statistics().entangled)


trio.run(main)
