import trio

from actors import MessageChannel, Restart, open_supervisor


async def shout(inbox):
    async for event in inbox:
        inbox.post_message(event.data.upper())


async def counter(task_status=trio.TASK_STATUS_IGNORED):
    channel = MessageChannel()
    task_status.started({"status": "ready", "port": channel.port1})
    count = 0
    async for event in channel.port2:
        count += 1
        channel.port2.post_message(f"{event.data} #{count}")


# --8<-- [start:main]
async def main():
    channel = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(shout, channel.port2, restart=Restart.TRANSIENT)
        port = (await sup.start(counter, restart=Restart.TRANSIENT))["port"]
        channel.port1.post_message("hello")
        print((await channel.port1.receive()).data)
        port.post_message("tick")
        print((await port.receive()).data)

        print(sup.tree())
        stats = sup.statistics()
        print(f"{stats.children} children, {stats.restarts} restarts")

        channel.port1.close()  # both loops end; both actors are TRANSIENT
        port.close()
    print(sup.tree())


# --8<-- [end:main]

trio.run(main)
