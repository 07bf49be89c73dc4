import trio

from actors import MessageChannel


async def worker(inbox):
    event = await inbox.receive()  # the message, and the port transferred with it
    (reply,) = event.ports
    for n in range(event.data["count"]):
        reply.post_message(n * n)
    reply.close()


async def main():
    control, results = MessageChannel(), MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker, control.port2)
        control.port1.post_message({"count": 3}, transfer=[results.port2])
        async for event in results.port1:  # ends when the worker closes its port
            print(event.data)


trio.run(main)
