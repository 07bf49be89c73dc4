import trio

from actors import MessageChannel


async def count_words(inbox):
    total = 0
    async for event in inbox:  # receive() in a loop
        total += len(event.data.split())
        print(f"{event.data!r}: {total} words so far")
    print("the loop ended: the peer is closed")


async def main():
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(count_words, channel.port2)
        channel.port1.post_message("the quick brown fox")
        channel.port1.post_message("jumps over")
        channel.port1.post_message("the lazy dog")
        channel.port1.close()  # more on close() below


trio.run(main)
