import trio

from actors import DataCloneError, MessageChannel, PortCollection


async def main():
    a, b, c = MessageChannel(), MessageChannel(), MessageChannel()
    group = PortCollection([a.port1, b.port1])  # the group holds the sending ends
    group.add(c.port1)
    print(group, len(group), c.port1 in group)
    receivers = [a.port2, b.port2, c.port2]

    order = {"item": "tea", "sizes": [1, 2]}
    group.post_message(order)  # each member gets its own structured clone
    copies = [(await port.receive()).data for port in receivers]
    print(copies[0], copies[0] is order, copies[0] is copies[1])

    price = ("tea", 4.5)
    group.post_message(price)  # immutable all the way down: shared, not copied
    copies = [(await port.receive()).data for port in receivers]
    print(all(copy is price for copy in copies))

    try:
        group.post_message("a port for everyone?", transfer=[MessageChannel().port1])
    except DataCloneError as exc:
        print("DataCloneError:", exc)


trio.run(main)
