import trio

from actors import MessageChannel, PortCollection


async def main():
    a, b, c, d = (MessageChannel() for _ in range(4))
    group = PortCollection([a.port1, b.port1, c.port1, d.port1])
    print("members:", len(group))

    a.port1.close()
    print("members:", len(group), "(a's member port was closed)")

    b.port2.close()
    print("members:", len(group), "(b's peer was closed: nobody would receive)")

    elsewhere = MessageChannel()
    elsewhere.port1.post_message("yours now", transfer=[c.port1])
    print("members:", len(group), "(c's member port was transferred away)")

    del d  # the group holds its ports weakly: this was the last reference to d.port1
    print("members:", len(group), "(d's member port was garbage-collected)")

    group.post_message("anyone there?")  # reaches nobody, and is no error
    stats = group.statistics()
    print(f"sent={stats.sent} delivered={stats.delivered}")


trio.run(main)
