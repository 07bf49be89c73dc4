import trio
import trio.testing

from actors import Lagged, MessageChannel, PortCollection, SlowMemberPolicy


async def read_all(port):
    """What a receiver sees: each message, a Lagged gap, then the end."""
    seen = []
    while True:
        try:
            async for event in port:
                seen.append(str(event.data))
        except Lagged as lagged:  # raised once, in place of the dropped messages
            seen.append(f"Lagged({lagged.missed} missed)")
            continue  # the next receive() goes on with what is still queued
        seen.append("EndOfChannel")
        return " ".join(seen)


async def one_policy(policy):
    print(policy.name)
    keeps_up, stuck = MessageChannel(), MessageChannel()
    group = PortCollection([keeps_up.port1, stuck.port1], max_queued=2, policy=policy)
    got = []
    keeps_up.port2.onmessage = lambda event: got.append(str(event.data))  # at once

    for n in range(1, 6):  # nobody reads stuck.port2 meanwhile
        with trio.move_on_after(1) as waiting:
            await group.send(n)
        if waiting.cancelled_caught:
            print(f"  send({n}) gave up after 1s: stuck is full, so nothing was sent")
    await trio.testing.wait_all_tasks_blocked()  # let keeps_up's handler run
    s = group.statistics()
    print(
        f"  members={s.members} sent={s.sent} delivered={s.delivered}"
        f" dropped={s.dropped} lagged={s.lagged} disconnected={s.disconnected}"
    )

    keeps_up.port1.close()
    stuck.port1.close()  # the receivers get what is queued, then EndOfChannel
    print("  keeps_up got", " ".join(got))
    print("  stuck got   ", await read_all(stuck.port2))


async def main():
    for policy in SlowMemberPolicy:
        await one_policy(policy)


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
