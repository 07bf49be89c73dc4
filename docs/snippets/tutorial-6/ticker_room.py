import itertools
import logging

import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, PortCollection, open_supervisor

structlog.configure(
    processors=[
        structlog.processors.KeyValueRenderer(
            key_order=["event", "actor", "incarnation", "intensity_left"],
            drop_missing=True,
        ),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
)


# --8<-- [start:room]
async def room(front):
    """Send a tick to every member once a second; hand out doors to join by."""
    members = PortCollection()

    def join(request):  # on a door: a name, the member's port, ask's reply port
        name, port = request.data, request.ports[0]

        def left(event):  # the group has dropped the port already
            print(f"  room: {name} left; members: {len(members)}")

        port.onclose = left
        port.start()  # close events need a started port; this also keeps it alive
        members.add(port)
        request.reply(len(members))

    def new_door(event):  # on the front: a port that leads here
        event.ports[0].onmessage = join

    front.onmessage = new_door
    for n in itertools.count(1):
        await trio.sleep(1)
        members.post_message(f"tick {n}")
    # --8<-- [end:room]


# --8<-- [start:watcher]
async def watcher(name, door):
    me = actors.current_actor()
    line = MessageChannel()  # made by this incarnation: closes when it ends

    def heard(event):
        print(f"  {name} (incarnation {me.incarnation}) got {event.data}")
        if name == "bob" and event.data == "tick 2":
            raise RuntimeError("bad tick")  # this crashes bob

    line.port1.onmessage = heard
    size = await actors.ask(door, name, transfer=[line.port2])  # join: port2 moves
    print(f"  {name} joined; members: {size}")
    await trio.sleep_forever()
    # --8<-- [end:watcher]


# --8<-- [start:main]
async def main():
    front = MessageChannel()
    handles = {}
    async with open_supervisor() as sup:
        handles["room"] = sup.spawn(room, front.port2)
        for name in ["ann", "bob", "cy"]:
            door = MessageChannel()
            front.port1.post_message("a door", transfer=[door.port2])  # room's end
            handles[name] = sup.spawn(watcher, name, door.port1, name=name)
            await trio.testing.wait_all_tasks_blocked()  # let it join first

        await trio.sleep(2.5)  # ticks 1 and 2: bob crashes at tick 2
        print("main: cy is stopped for good")
        handles["cy"].cancel()
        await trio.sleep(1)  # tick 3
        handles["room"].cancel()  # first: it would report the watchers leaving
        sup.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
# --8<-- [end:main]
