import trio

from actors import MessageChannel


async def main():
    channel = MessageChannel()
    order = {"item": "tea", "sizes": ["small"]}
    channel.port1.post_message(order)  # the clone is taken here
    order["item"] = "coffee"  # too late: changes only the sender's dict
    order["sizes"].append("large")

    received = (await channel.port2.receive()).data
    print("sent:    ", order)
    print("received:", received)
    print("shared:", received is order, received["sizes"] is order["sizes"])


trio.run(main)
