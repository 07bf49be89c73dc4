import logging

import structlog
import trio

import actors
from actors import MessageChannel, open_supervisor

# Keep the crash logs out of this example (see Logging below).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def echo_service(front_door):
    me = actors.current_actor()

    def echo(event):
        if event.data == "boom":
            raise ValueError("boom")  # a handler that raises crashes the actor
        event.target.post_message(f"{event.data} (incarnation {me.incarnation})")

    async for request in front_door:
        session = MessageChannel()  # made by this incarnation: it owns both ends
        session.port2.onmessage = echo
        request.reply(session.port1, transfer=[session.port1])  # port1 moves to the client


async def main():
    front = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(echo_service, front.port2)
        a = await actors.ask(front.port1, "open")
        b = await actors.ask(front.port1, "open")
        a.post_message("hello")
        print((await a.receive()).data)

        b.post_message("boom")  # crashes incarnation 1: both of its sessions end
        for name, port in [("a", a), ("b", b)]:
            try:
                await port.receive()
            except trio.EndOfChannel:
                print(f"session {name}: EndOfChannel")

        c = await actors.ask(front.port1, "open")  # the front door outlived the crash
        c.post_message("hello again")
        print((await c.receive()).data)
        sup.cancel()


trio.run(main)
