import trio
import trio.testing

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    port = channel.port2
    port.add_event_listener("message", lambda event: print("got", event.data))
    channel.port1.post_message("ping")

    await trio.testing.wait_all_tasks_blocked()
    print("before start():", port.statistics().queued, "queued")

    port.start()
    await trio.testing.wait_all_tasks_blocked()


trio.run(main)
