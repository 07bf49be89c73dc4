import trio
import trio.testing

from actors import MessageChannel


async def main():
    web, python = MessageChannel(), MessageChannel()

    # The web's face: a handler, called by the dispatcher; setting onmessage starts the queue.
    web.port2.onmessage = lambda event: print("onmessage got", event.data)
    web.port2.onclose = lambda event: print("onclose: the peer is gone")

    for n in range(2):
        web.port1.post_message(n)
        python.port1.post_message(n)
    web.port1.close()
    python.port1.close()
    await trio.testing.wait_all_tasks_blocked()

    # trio's face: receive() or async for, which ends when the peer is gone.
    async for event in python.port2:
        print("async for got", event.data)
    print("async for ended: the peer is gone")


trio.run(main)
