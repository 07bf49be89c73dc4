import trio
import trio.testing

from actors import MessageChannel, PortCollection, SlowMemberPolicy


async def busy_member(policy: SlowMemberPolicy) -> None:
    members = PortCollection(max_queued=3, policy=policy)
    line = MessageChannel()
    members.add(line.port2)  # the room's end of the member's line
    line.port1.onmessage = lambda e: print(f"  hears {e.data}")
    line.port1.add_event_listener("lagged", lambda e: print(f"  missed {e.data} lines"))
    line.port1.onclose = lambda e: print("  its line was closed")

    for n in range(1, 6):  # five lines said before the member's handlers get to run
        members.post_message(f"line {n}")
    await trio.testing.wait_all_tasks_blocked()  # now they run
    stats = members.statistics()
    print(f"  in the room: {len(members)}, dropped: {stats.dropped}")
    print(f"  disconnected: {stats.disconnected}")
    line.port1.close()  # the member leaves


async def main() -> None:
    for policy in SlowMemberPolicy:
        print(f"{policy.name}, max_queued=3:")
        await busy_member(policy)


trio.run(main)
