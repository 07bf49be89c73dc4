import trio

from actors import MessageChannel, PortCollection


async def main():
    a, b, c, d, e = (MessageChannel() for _ in range(5))
    group = PortCollection([a.port1, b.port1, c.port1, d.port1])
    print("members:", len(group))

    a.port1.close()
    print("members:", len(group), "(a's port was closed)", a.port1 in group)
    b.port2.close()
    print("members:", len(group), "(b's peer was closed)")
    e.port1.post_message("yours now", transfer=[c.port1])
    print("members:", len(group), "(c's port was transferred away)")
    del d  # the last reference to d.port1
    print("members:", len(group), "(d's port was garbage-collected)")

    group.add(a.port1)  # a closed port cannot join: nothing happens
    f = MessageChannel()
    group.add(f.port1)
    group.add(f.port1)  # already a member: it keeps its place
    group.iterate(lambda port: print("iterate():", port))
    group.remove(f.port1)
    group.remove(f.port1)  # not a member any more: nothing happens
    print("members:", len(group), list(group))


trio.run(main)
