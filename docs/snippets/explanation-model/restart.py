import logging

import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, open_supervisor

# Keep the crash log out of this example (the supervision pages show it).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def keeper(door):
    me = actors.current_actor()
    sessions = []  # this incarnation's state, and the ports it made
    async for event in door:
        if event.data == "session":
            session = MessageChannel()  # made by this incarnation: it owns both ends
            sessions.append(session.port1)
            event.reply(session.port2, transfer=[session.port2])  # port2 moves to the asker
        elif event.data == "crash":
            raise RuntimeError("boom")
        else:
            event.reply(f"incarnation {me.incarnation} got {event.data!r}")


async def main():
    door = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(keeper, door.port2)  # door.port2 is the actor's slot port
        session = await actors.ask(door.port1, "session")
        session.onclose = lambda event: print("session closed: the incarnation that made it died")
        session.start()

        door.port1.post_message("crash")
        print(await actors.ask(door.port1, "hello"))  # queued at the door across the restart
        await trio.testing.wait_all_tasks_blocked()
        print(handle.statistics().restarts, "restart; the door never closed:", door.port1)
        sup.cancel()


trio.run(main)
