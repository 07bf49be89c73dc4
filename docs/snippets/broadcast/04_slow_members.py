import trio
import trio.testing

from actors import MessageChannel, PortCollection


async def main():
    reader, stuck = MessageChannel(), MessageChannel()
    group = PortCollection([reader.port1, stuck.port1], max_queued=1)
    await group.send("first")  # nobody reads stuck.port2: its backlog is 1, the bound
    print("reader got", (await reader.port2.receive()).data)

    with trio.move_on_after(2):
        await group.send("second")  # waits for stuck, then is cancelled: nothing sent
    queued = reader.port2.statistics().queued
    print(f"t={trio.current_time():g}s gave up; the reader has {queued} queued")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(group.send, "third")
        await trio.sleep(3)
        stuck.port2.close()  # the stuck member leaves: send() stops waiting for it
    print(f"t={trio.current_time():g}s sent; members: {len(group)}")
    print("reader got", (await reader.port2.receive()).data)


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
