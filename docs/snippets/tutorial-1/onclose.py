import trio
import trio.testing

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    port = channel.port2

    def on_close(event):
        print(event.type, "event, target is port2:", event.target is port)

    port.onclose = on_close
    channel.port1.post_message("one")
    channel.port1.post_message("two")
    channel.port1.close()
    await trio.testing.wait_all_tasks_blocked()
    print("nothing yet: onclose does not start the queue")

    port.onmessage = lambda event: print("got", event.data)  # this starts it
    await trio.testing.wait_all_tasks_blocked()


trio.run(main)
