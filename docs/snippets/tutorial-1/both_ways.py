import trio

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    left, right = channel.port1, channel.port2

    for n in range(1, 4):
        left.post_message(f"left {n}")
    right.post_message("right 1")  # the other direction
    right.post_message("right 2")

    print([(await right.receive()).data for _ in range(3)])
    print([(await left.receive()).data for _ in range(2)])


trio.run(main)
