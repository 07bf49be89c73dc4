"""Chat room: a group of actors held in a ``PortCollection``, which they join and leave by port.

1. The room is an actor that keeps its members in a ``PortCollection``. It hands out doors:
   ports that lead to it. A client is an actor that gets a door, makes a ``MessageChannel``
   of its own and joins by transferring one end through the door
   (``actors.ask(door, name, transfer=[line.port2])``). That end is the room's member port;
   the client talks and listens on the other.
2. What a client says, the room tags with its name and broadcasts to every member with one
   ``members.post_message(...)``: each member gets its own copy.
3. Nobody ever unsubscribes. The collection holds its ports weakly and drops a member as soon
   as the member's peer is closed. Bob leaves cleanly: he closes his end. Carol crashes: she
   is a ``TEMPORARY`` actor, so she is not restarted, and the port she made closes with her.
   Either way the room's member port loses its peer, the member is gone from the collection,
   and the room's ``close`` listener, which only announces the departure, finds
   ``len(members)`` already one smaller.

The clients are ``TEMPORARY``. Were one restarted, its next incarnation would join again by
itself: the door is in its spawn arguments, so it belongs to the client's slot and survives
restarts, while the line it made belongs to the incarnation that made it.

The main task directs the scene and prints the transcript. Each client forwards what it hears
to the main task over its own control port, and the main task reads the clients one after
another, so the transcript is the same on every run however trio orders the tasks.

Carol's crash is logged by the library (structlog); ``configure_logging`` renders it as one
line on stderr instead of a traceback.

Run it (after ``python3 dev.py setup``): ``.venv/bin/python examples/chat_room.py``.
"""

from __future__ import annotations

import logging
import sys

import structlog
import trio
from structlog.typing import EventDict, WrappedLogger

import actors
from actors import (
    Event,
    MessageChannel,
    MessageEvent,
    MessagePort,
    PortCollection,
    Restart,
    SlowMemberPolicy,
)


# --8<-- [start:logging]
def one_line_errors(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """A structlog processor: show a logged exception as its repr, without the traceback."""
    error = event.pop("exc_info", None)
    if error:
        event["error"] = repr(error if isinstance(error, BaseException) else sys.exc_info()[1])
    return event


def configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,  # the library binds `actor` there
            structlog.processors.add_log_level,
            one_line_errors,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    # --8<-- [end:logging]


# --8<-- [start:room]
def plural(count: int) -> str:
    return f"{count} member{'' if count == 1 else 's'}"


async def room(front: MessagePort) -> None:
    """Hand out doors, let clients join through them, and broadcast what members say."""
    # A member that stops reading loses its oldest lines (and is told how many), so a stuck
    # client costs the room at most 100 queued lines.
    members = PortCollection(max_queued=100, policy=SlowMemberPolicy.DROP_OLDEST)

    def join(request: MessageEvent) -> None:  # on a door: a name, the member's port, a reply port
        name, port = request.data, request.ports[0]

        def said(event: MessageEvent) -> None:
            members.post_message(f"{name}: {event.data}")

        def gone(event: Event) -> None:  # announces only: the collection already dropped it
            members.post_message(f"* {name} left, {plural(len(members))}")

        port.onmessage = said
        port.onclose = gone
        members.post_message(f"* {name} joined")  # to those already here
        members.add(port)
        request.reply(f"welcome, {name}: {plural(len(members))}")

    async for request in front:
        if request.data == "door":
            door = MessageChannel()
            door.port2.onmessage = join
            request.reply(door.port1, transfer=[door.port1])
        elif request.data == "members":
            request.reply(len(members))
    # --8<-- [end:room]


# --8<-- [start:client]
async def client(name: str, door: MessagePort, control: MessagePort) -> None:
    """Join the room, tell the main task what it hears, and do what the main task says."""
    line = MessageChannel()  # made by this incarnation: its ports close when it ends
    line.port1.onmessage = lambda event: control.post_message(f"{name} hears: {event.data}")
    line.port1.add_event_listener(
        "lagged", lambda event: control.post_message(f"{name} missed {event.data} lines")
    )
    welcome = await actors.ask(door, name, transfer=[line.port2])  # join: port2 moves
    control.post_message(f"{name} joins: {welcome}")
    async for command in control:
        match command.data:
            case ("say", text):
                line.port1.post_message(text)
            case "leave":
                line.port1.close()  # the room's member port loses its peer: that is leaving
                return  # a TEMPORARY actor that returns is done
            case "crash":
                raise RuntimeError(f"{name} tripped over the network cable")
    # --8<-- [end:client]


# --8<-- [start:main]
async def main() -> None:
    configure_logging()
    front = MessageChannel()
    controls: dict[str, MessagePort] = {}
    handles: dict[str, actors.ActorHandle] = {}

    async def hear(*names: str) -> None:
        """Print the next report of each client named, in that order."""
        for name in names:
            print("  " + (await controls[name].receive()).data)

    async def room_size() -> None:
        print(f"  the room has {plural(await actors.ask(front.port1, 'members'))}")

    async with actors.open_supervisor() as supervisor:
        supervisor.spawn(room, front.port2)

        print("alice, bob and carol join, one after another")
        for name in ["alice", "bob", "carol"]:
            already_there = list(controls)
            door = await actors.ask(front.port1, "door")  # a port to the room, for this client
            control = MessageChannel()
            controls[name] = control.port1
            handles[name] = supervisor.spawn(
                client, name, door, control.port2, name=name, restart=Restart.TEMPORARY
            )
            await hear(name, *already_there)  # the newcomer's welcome, then the others' news
        await room_size()

        print("alice and carol talk: every member gets a copy, the speaker too")
        controls["alice"].post_message(("say", "hello, room"))
        await hear("alice", "bob", "carol")
        controls["carol"].post_message(("say", "bob, are you there?"))
        await hear("alice", "bob", "carol")

        print("bob leaves: he closes his end of the line")
        controls["bob"].post_message("leave")
        await hear("alice", "carol")
        await handles["bob"].wait()
        print(f"  bob is {handles['bob'].statistics().state.value}: he returned")
        await room_size()

        print("carol crashes: a TEMPORARY actor, so no restart, and no goodbye")
        controls["carol"].post_message("crash")
        await hear("alice")
        await handles["carol"].wait()
        crash = handles["carol"].statistics().last_crash
        print(f"  carol is {handles['carol'].statistics().state.value}: {crash!r}")
        await room_size()

        print("alice talks to whoever is left")
        controls["alice"].post_message(("say", "just me, then"))
        await hear("alice")
        left = await actors.ask(front.port1, "members")
        supervisor.cancel()
    print(f"chat_room done: 3 joined, bob left, carol crashed, {plural(left)} still in the room")
    # --8<-- [end:main]


if __name__ == "__main__":
    trio.run(main)
