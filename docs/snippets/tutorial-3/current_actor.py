import trio

from actors import MessageChannel, Restart, current_actor, open_supervisor


async def whoami(outbox):
    me = current_actor()  # the ActorHandle of the actor that calls it
    outbox.post_message((me.name, me.path, me.incarnation))


async def main():
    a, b, c = MessageChannel(), MessageChannel(), MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(whoami, a.port2, restart=Restart.TRANSIENT)
        sup.spawn(whoami, b.port2, restart=Restart.TRANSIENT)
        sup.spawn(whoami, c.port2, name="alice", restart=Restart.TRANSIENT)
        for channel in (a, b, c):
            print((await channel.port1.receive()).data)
    try:
        current_actor()
    except RuntimeError as exc:
        print("in main:", exc)


trio.run(main)
