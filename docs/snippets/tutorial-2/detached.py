import trio

from actors import MessageChannel


async def main():
    carrier, work = MessageChannel(), MessageChannel()
    old = work.port2
    carrier.port1.post_message("take this", transfer=[old])

    print(old, old.statistics().transferred)
    old.post_message("hello?")  # silently does nothing
    print("queued at work.port1:", work.port1.statistics().queued)
    try:
        await old.receive()
    except trio.ClosedResourceError as exc:
        print("receive:", repr(exc))
    try:
        await old.send("hello?")
    except trio.ClosedResourceError as exc:
        print("send:", repr(exc))


trio.run(main)
