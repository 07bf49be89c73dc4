import logging
import sys

import structlog
import trio

import actors
from actors import MessageChannel, MessageEvent, MessagePort, PortCollection, Restart

structlog.configure(  # crashes on one line, on stderr
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.KeyValueRenderer(key_order=["level", "event", "actor"]),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
)


async def room(front: MessagePort) -> None:
    members = PortCollection()

    def join(request: MessageEvent) -> None:
        name, port = request.data, request.ports[0]
        port.onmessage = lambda event: members.post_message(f"{name}: {event.data}")
        port.onclose = lambda event: members.post_message(f"* {name} left")
        members.post_message(f"* {name} joined")
        members.add(port)
        request.reply(len(members))

    async for request in front:  # each request is for a door
        door = MessageChannel()
        door.port2.onmessage = join
        request.reply(door.port1, transfer=[door.port1])


async def client(name: str, door: MessagePort, control: MessagePort) -> None:
    me = f"{name}#{actors.current_actor().incarnation}"
    line = MessageChannel()  # this incarnation's: it closes when the incarnation ends
    line.port1.onmessage = lambda e: control.post_message(f"{me} hears: {e.data}")
    count = await actors.ask(door, name, transfer=[line.port2])  # door: a slot port
    control.post_message(f"{me} is in ({count} in the room)")
    async for command in control:
        if command.data == "crash":
            raise RuntimeError(f"{me} crashed")
        line.port1.post_message(command.data)


async def main() -> None:
    front = MessageChannel()
    controls = {}
    async with actors.open_supervisor() as supervisor:
        supervisor.spawn(room, front.port2)
        for name in ["alice", "carol"]:
            door = await actors.ask(front.port1, "door")
            control = MessageChannel()
            controls[name] = control.port1
            supervisor.spawn(
                client, name, door, control.port2, name=name, restart=Restart.TRANSIENT
            )
            print((await control.port1.receive()).data)
        print((await controls["alice"].receive()).data)  # * carol joined

        controls["carol"].post_message("crash")
        print((await controls["carol"].receive()).data)  # from incarnation 2
        for _ in range(2):
            print((await controls["alice"].receive()).data)
        controls["carol"].post_message("I'm back")
        print((await controls["alice"].receive()).data)
        supervisor.cancel()


trio.run(main)
