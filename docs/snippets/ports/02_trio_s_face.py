import trio

from actors import MessageChannel


async def producer(port):
    async with port:  # closes the port on exit
        for n in range(3):
            await port.send({"n": n})


async def main():
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer, channel.port1)
        async for event in channel.port2:
            print(event.data)
    print(channel.port2.statistics())


trio.run(main)
