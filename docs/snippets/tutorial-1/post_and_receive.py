import trio

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    print(channel.port1)
    print(channel.port2)

    channel.port1.post_message("hello")  # returns at once; never blocks
    channel.port1.post_message({"n": 2})

    event = await channel.port2.receive()  # waits for the next message
    print(event)
    print(event.data, event.target is channel.port2, event.ports)
    print((await channel.port2.receive()).data)


trio.run(main)
