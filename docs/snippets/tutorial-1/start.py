import trio
import trio.testing

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    port = channel.port2
    port.add_event_listener("message", lambda event: print("got", event.data))

    channel.port1.post_message("one")
    channel.port1.post_message("two")
    await trio.testing.wait_all_tasks_blocked()
    print("before start():", port.statistics().queued, "queued")

    port.start()  # enables the port message queue
    await trio.testing.wait_all_tasks_blocked()
    print("after start():", port.statistics().queued, "queued")


trio.run(main)
