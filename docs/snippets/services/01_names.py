import logging

import structlog
import trio
import trio.testing

import actors
from actors import Restart, open_supervisor

# Keep the crash's log out of this example (tutorial 5 shows it).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def echo():
    """Serves "echo": answers every message of every client, with its incarnation."""
    me = actors.current_actor()
    async with actors.serve("echo") as incoming, trio.open_nursery() as nursery:
        async for port in incoming:  # one fresh port per client
            nursery.start_soon(answer, port, me.incarnation)


async def answer(port, incarnation):
    async for event in port:
        if event.data == "crash":
            raise RuntimeError("asked to crash")
        port.post_message(f"{event.data} (from incarnation {incarnation})")


async def main():
    try:
        await actors.connect("echo")
    except actors.ServiceNotFoundError as error:
        print("before:", error)

    async with open_supervisor() as sup:
        sup.spawn(echo, restart=Restart.PERMANENT)
        port = await actors.connect("echo", wait=True)  # waits until it serves
        port.post_message("hello")
        print((await port.receive()).data)

        port.post_message("crash")  # the server's incarnation ends: its ports close
        try:
            await port.receive()
        except trio.EndOfChannel:
            print("the connection closed with the crash")

        port = await actors.connect("echo", wait=True)  # the restarted server
        port.post_message("hello again")
        print((await port.receive()).data)
        sup.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
