import logging

import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, open_supervisor

structlog.configure(
    processors=[
        structlog.processors.KeyValueRenderer(
            key_order=["event", "actor", "incarnation", "intensity_left"],
            drop_missing=True,
        ),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
)


# --8<-- [start:main]
async def keeper(door):
    me = actors.current_actor()
    sessions = []  # the ends this incarnation kept: its state
    async for event in door:
        if event.data == "crash":
            raise RuntimeError("asked to crash")
        session = MessageChannel()  # made by this incarnation
        sessions.append(session.port1)
        event.reply(session.port2, transfer=[session.port2])  # moves to the client
        print(f"keeper: incarnation {me.incarnation} opened a session")


async def main():
    door = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(keeper, door.port2)  # the door is a slot port
        session = await actors.ask(door.port1, "open")
        session.onclose = lambda event: print("main: close event on the session port")
        session.start()  # a close event comes through the queue

        door.port1.post_message("crash")
        await trio.testing.wait_all_tasks_blocked()  # the crash and the restart
        await actors.ask(door.port1, "open")  # the door still works
        print("main: the door is", door.port1)
        sup.cancel()


trio.run(main)
# --8<-- [end:main]
