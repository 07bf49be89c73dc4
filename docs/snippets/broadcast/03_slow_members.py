import trio
import trio.testing

from actors import Lagged, MessageChannel, PortCollection, SlowMemberPolicy


async def consume(port, seconds, got):
    """Note down each message, then spend `seconds` on it."""
    while True:
        try:
            async for event in port:
                got.append(str(event.data))
                await trio.sleep(seconds)
        except Lagged as lagged:  # DROP_OLDEST: the gap, then the loop goes on
            got.append(f"(lagged: {lagged.missed} missed)")
            continue
        got.append("(end)")  # EndOfChannel: the port was closed
        return


async def one_policy(policy):
    fast, slow = MessageChannel(), MessageChannel()
    ticks = PortCollection([fast.port1, slow.port1], max_queued=2, policy=policy)
    fast_got, slow_got = [], []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume, fast.port2, 0, fast_got)
        nursery.start_soon(consume, slow.port2, 2.75, slow_got)
        start = trio.current_time()
        for n in range(10):  # a tick a second
            await ticks.send(n)
            await trio.sleep(1)
        print(f"{policy.name}: 10 ticks took {trio.current_time() - start:g}s")
        print(f"  {ticks.statistics()}")
        fast.port1.close()
        slow.port1.close()
    print(f"  fast got {' '.join(fast_got)}")
    print(f"  slow got {' '.join(slow_got)}")


async def main():
    for policy in SlowMemberPolicy:
        await one_policy(policy)


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
