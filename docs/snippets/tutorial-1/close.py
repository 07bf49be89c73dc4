import trio

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    channel.port1.post_message("last words")
    channel.port1.close()  # idempotent, never raises

    # The other side gets what was posted before the close, then the end.
    print((await channel.port2.receive()).data)
    try:
        await channel.port2.receive()
    except trio.EndOfChannel:
        print("port2: EndOfChannel")
    channel.port2.post_message("anyone there?")  # silently does nothing
    try:
        await channel.port2.send("anyone there?")  # trio's face tells you
    except trio.BrokenResourceError as exc:
        print("port2.send:", repr(exc))

    # The closed port itself is done.
    try:
        await channel.port1.receive()
    except trio.ClosedResourceError as exc:
        print("port1.receive:", repr(exc))
    print("port1 closed:", channel.port1.statistics().closed)
    print("port2 entangled:", channel.port2.statistics().entangled)


trio.run(main)
