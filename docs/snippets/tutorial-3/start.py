import trio

from actors import MessageChannel, Restart, open_supervisor


async def counter(task_status=trio.TASK_STATUS_IGNORED):
    channel = MessageChannel()  # made by this actor
    # Ready: hand back a value. port1 moves out to the caller of start().
    task_status.started({"status": "ready", "port": channel.port1})
    count = 0
    async for event in channel.port2:
        count += 1
        channel.port2.post_message(f"{event.data} #{count}")


async def main():
    async with open_supervisor() as sup:
        # Returns once counter has called task_status.started().
        value = await sup.start(counter, restart=Restart.TRANSIENT)
        print(value)
        port = value["port"]
        for word in ("tick", "tock"):
            port.post_message(word)
            print((await port.receive()).data)
        port.close()  # counter's loop ends


trio.run(main)
