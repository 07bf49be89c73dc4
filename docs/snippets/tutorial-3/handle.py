import trio
import trio.testing

from actors import MessageChannel, open_supervisor


async def tally(inbox):
    total = 0
    async for event in inbox:
        total += event.data
        inbox.post_message(total)


def show(handle):
    s = handle.statistics()  # a frozen snapshot
    print(
        f"{s.state.value}: incarnation {s.incarnation},",
        f"ports {s.ports}, queued {s.queued}",
    )


async def main():
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(tally, channel.port2)  # PERMANENT: a server
        for n in (1, 2, 3):
            channel.port1.post_message(n)
        show(handle)  # "running" already, but tally's task has not run yet
        await trio.testing.wait_all_tasks_blocked()
        show(handle)  # it has taken all three and waits for more

        handle.cancel()  # stop it for good, whatever its restart type
        await handle.wait()  # until it has stopped
        show(handle)
        async for event in channel.port1:  # what tally posted, then the end
            print("total", event.data)
        print("children:", sup.children)


trio.run(main)
