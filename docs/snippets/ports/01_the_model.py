import trio

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    left, right = channel.port1, channel.port2

    job = {"n": 1}
    left.post_message(job)
    job["n"] = 99  # too late: the clone was taken by post_message
    left.post_message({"n": 2})
    right.post_message("hello from the right")  # the other direction

    event = await right.receive()
    print(event.data, event.data is job)
    print((await right.receive()).data)
    print((await left.receive()).data)


trio.run(main)
