import trio

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    count = 0

    def bounce(event):
        nonlocal count
        count += 1
        event.target.post_message(event.data)  # straight back to the peer

    channel.port1.onmessage = bounce
    channel.port2.onmessage = bounce
    channel.port1.post_message("ball")

    await trio.sleep(0.05)  # the endless rally does not starve this timer
    channel.port1.close()
    print("timer fired; the ball bounced more than 100 times:", count > 100)


trio.run(main)
