import trio

from actors import MessageChannel


async def squarer(inbox):
    async for event in inbox:
        reply = event.ports[0]  # the port this request came with
        reply.post_message(event.data**2)
        reply.close()  # one answer per request


async def main():
    requests = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(squarer, requests.port2)
        answers = {}
        for n in (3, 4):
            reply = MessageChannel()
            requests.port1.post_message(n, transfer=[reply.port2])
            answers[n] = reply.port1  # keep the other end
        for n, port in answers.items():
            async for event in port:  # one message, then the end
                print(n, "squared is", event.data)
        requests.port1.close()  # squarer's loop ends


trio.run(main)
