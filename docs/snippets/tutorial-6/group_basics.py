import trio

from actors import MessageChannel, PortCollection


async def main():
    ann, bob, cy = MessageChannel(), MessageChannel(), MessageChannel()
    group = PortCollection([ann.port1, bob.port1])  # it holds the ends you post on
    group.add(cy.port1)
    print(group, len(group), cy.port1 in group)

    quote = {"symbol": "ACME", "price": 101.5}
    group.post_message(quote)  # one call; every member's peer gets its own copy
    for name, channel in [("ann", ann), ("bob", bob), ("cy", cy)]:
        event = await channel.port2.receive()
        print(f"{name} got {event.data} (a copy: {event.data is not quote})")


trio.run(main)
