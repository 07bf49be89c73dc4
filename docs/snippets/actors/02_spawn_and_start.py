import trio

import actors
from actors import MessageChannel, open_supervisor


async def store(task_status=trio.TASK_STATUS_IGNORED):
    data = {}
    channel = MessageChannel()  # made by this incarnation, so owned by it
    task_status.started(channel.port1)  # moves port1 to the caller of start()
    async for event in channel.port2:
        key, *value = event.data
        if value:
            data[key] = value[0]
        event.reply(data.get(key))


async def main():
    async with open_supervisor() as sup:
        port = await sup.start(store)
        await actors.ask(port, ("colour", "green"))
        print(await actors.ask(port, ("colour",)))
        sup.cancel()  # stops the store for good: the ports it owns close
    try:
        await actors.ask(port, ("colour",))
    except trio.BrokenResourceError as exc:
        print("BrokenResourceError:", exc)


trio.run(main)
