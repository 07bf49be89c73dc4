import trio
import trio.testing

from actors import Lagged, MessageChannel, PortCollection, SlowMemberPolicy


async def main():
    reader, handled, unannounced = MessageChannel(), MessageChannel(), MessageChannel()
    group = PortCollection(
        [reader.port1, handled.port1, unannounced.port1],
        max_queued=3,
        policy=SlowMemberPolicy.DROP_OLDEST,
    )
    for n in range(10):  # nobody reads yet: each member keeps the newest 3, and a notice
        group.post_message(n)
    print(reader.port2.statistics().queued, "queued;", group.statistics())

    while True:
        try:
            event = await reader.port2.receive()
        except Lagged as lagged:  # once for the gap; the next receive() goes on
            print(f"receive(): Lagged(missed={lagged.missed}): {lagged}")
            continue
        print("receive():", event.data)
        if event.data == 9:
            break

    handled.port2.add_event_listener("lagged", lambda event: print("lagged event:", event.data))
    handled.port2.onmessage = lambda event: print("message event:", event.data)
    await trio.testing.wait_all_tasks_blocked()

    unannounced.port2.onmessage = lambda event: print("no lagged listener:", event.data)
    await trio.testing.wait_all_tasks_blocked()


trio.run(main)
