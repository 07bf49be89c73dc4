import trio

import actors
from actors import ArrayBuffer, DataCloneError, MessageChannel, Restart, open_supervisor


async def child(config, port):
    print("child got:", config["name"], bytes(config["blob"]), port)
    print("child is:", actors.current_actor())


async def main():
    channel, blob = MessageChannel(), ArrayBuffer(b"abc")
    async with open_supervisor() as sup:
        config = {"name": "parser", "blob": blob}
        sup.spawn(child, config, channel.port2, restart=Restart.TRANSIENT)
        print("caller has:", blob, channel.port2)

        other = MessageChannel()
        try:
            sup.spawn(child, {"lock": trio.Lock()}, other.port2)
        except DataCloneError as exc:
            print("DataCloneError at", exc.path, "| still mine:", other.port2)
    try:
        actors.current_actor()
    except RuntimeError as exc:
        print("RuntimeError:", exc)


trio.run(main)
