import trio

from actors import MessageChannel, Restart, open_supervisor


async def front(requests, worker):
    async for event in requests:
        reply_port = event.ports[-1]  # the client's reply port
        print(f"front: handing {event.data!r} and its reply port to the worker")
        worker.post_message(event.data, transfer=[reply_port])
        print("front: the reply port is now", reply_port)


async def worker(jobs):
    async for event in jobs:
        print(f"worker: answering {event.data!r} on the client's port")
        event.ports[-1].post_message(event.data.upper())


async def main():
    requests, work = MessageChannel(), MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(front, requests.port2, work.port1, restart=Restart.TRANSIENT)
        sup.spawn(worker, work.port2, restart=Restart.TRANSIENT)

        reply = MessageChannel()  # the client keeps port1 and sends port2
        requests.port1.post_message("hello", transfer=[reply.port2])
        answer = await reply.port1.receive()
        print("client:", answer.data)
        requests.port1.close()  # front stops, then worker stops


trio.run(main)
