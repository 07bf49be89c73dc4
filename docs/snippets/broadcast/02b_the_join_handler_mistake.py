import warnings

import trio
import trio.testing

from actors import MessageChannel, PortCollection

warnings.simplefilter("default", ResourceWarning)  # Python hides it unless asked, as for files
warnings.showwarning = lambda message, category, *rest: print(f"{category.__name__}: {message}")


async def join(door):
    """What a member does: hand the room one end of a new channel, keep the other."""
    line = MessageChannel()
    door.post_message("join", [line.port2])
    await trio.testing.wait_all_tasks_blocked()  # the room's join handler runs
    return line.port1


async def room(label, group, on_join):
    print("--", label)
    door = MessageChannel()
    door.port2.onmessage = on_join
    mine = await join(door.port1)
    group.post_message("welcome")
    try:
        print("the member heard:", (await mine.receive()).data)
    except trio.EndOfChannel:
        print("the member heard: EndOfChannel (the room's end of its line was collected)")
    for port in (mine, door.port1, door.port2):
        port.close()


async def main():
    group = PortCollection()  # weak=True, the default
    await room("the mistake", group, lambda event: group.add(event.ports[0]))

    kept = []

    def keep_and_add(event):
        kept.append(event.ports[0])  # fix 1: keep a reference to the ports you use
        group.add(event.ports[0])

    await room("fix 1: keep a reference", group, keep_and_add)

    strong = PortCollection(weak=False)  # fix 2: the collection keeps its members alive
    await room("fix 2: weak=False", strong, lambda event: strong.add(event.ports[0]))
    for port in kept:
        port.close()


trio.run(main)
