import trio

from actors import MessageChannel


def worker(port):
    for line in range(3):
        port.post_message({"line": line})  # straight from this thread
    trio.from_thread.run_sync(port.close)  # anything else: through trio.from_thread


async def main():
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, worker, channel.port1)
        async for event in channel.port2:
            print(event.data)
    print("the worker closed its port")


trio.run(main)
