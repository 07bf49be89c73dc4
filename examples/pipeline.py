"""Pipeline: supervised stages wired together by passing ports.

    source -> parse -> transform -> sink -> main

The main task makes one ``MessageChannel`` per link and spawns each stage with the ports it
needs: its input and its output. ``spawn`` transfers them, so after wiring the main task holds
only the last port, where the result arrives.

End of stream travels by closing ports: when a stage's input ends (``async for`` finishes
because the upstream port was closed and every message it sent was received), the stage closes
its output, and the next stage's ``async for`` ends in turn. The stages are ``TRANSIENT``: a
normal return stops them for good, a crash would restart them on the same ports.

Run it (after ``python3 dev.py setup``): ``.venv/bin/python examples/pipeline.py``.
"""

from __future__ import annotations

from decimal import Decimal

import trio

import actors
from actors import MessageChannel, MessagePort, Restart

ORDERS = """\
# customer,item,quantity,unit price
alice,tea,2,4.50
bob,coffee,1,7.25
alice,scones,12,1.20

carol,tea,1,4.50
bob,jam,3,3.10
carol,coffee,10,7.25
alice,coffee,1,7.25
"""
BULK = 10  # from this quantity on, an order line gets 10% off


# --8<-- [start:end_of_stream]
def end_of_stream(out: MessagePort, what: str) -> None:
    """This stage is done: say so, and close its output so the next stage's input ends too."""
    print(f"  {actors.current_actor().name}: {what}, closing output")
    out.close()
    # --8<-- [end:end_of_stream]


# --8<-- [start:source]
async def source(lines: list[str], out: MessagePort) -> None:
    """Emit the raw lines, then end the stream."""
    for line in lines:
        out.post_message(line)
    end_of_stream(out, f"sent {len(lines)} lines")
    # --8<-- [end:source]


# --8<-- [start:parse]
async def parse(inbox: MessagePort, out: MessagePort) -> None:
    """Text lines in, orders out (comments and blank lines dropped)."""
    count = 0
    async for event in inbox:
        count += 1
        line = event.data.strip()
        if not line or line.startswith("#"):
            continue
        customer, item, quantity, price = line.split(",")
        cents = int(Decimal(price) * 100)
        out.post_message({"customer": customer, "item": item, "qty": int(quantity), "cents": cents})
    end_of_stream(out, f"input ended after {count} messages")
    # --8<-- [end:parse]


async def transform(inbox: MessagePort, out: MessagePort) -> None:
    """Price each order line, with the bulk discount."""
    count = 0
    async for event in inbox:
        count += 1
        order = event.data
        total = order["qty"] * order["cents"]
        if order["qty"] >= BULK:
            total = total * 9 // 10
        out.post_message({**order, "total": total})
    end_of_stream(out, f"input ended after {count} messages")


async def sink(inbox: MessagePort, out: MessagePort) -> None:
    """Add up what each customer owes; post the report once the stream has ended."""
    count = 0
    owed: dict[str, int] = {}
    async for event in inbox:
        count += 1
        order = event.data
        owed[order["customer"]] = owed.get(order["customer"], 0) + order["total"]
    out.post_message({"orders": count, "owed": owed})
    end_of_stream(out, f"input ended after {count} messages")


# --8<-- [start:main]
async def main() -> None:
    links = [MessageChannel() for _ in range(4)]
    result = links[-1].port2  # the only port the main task keeps
    async with actors.open_supervisor(name="pipeline") as supervisor:
        transient = Restart.TRANSIENT
        supervisor.spawn(source, ORDERS.splitlines(), links[0].port1, restart=transient)
        supervisor.spawn(parse, links[0].port2, links[1].port1, restart=transient)
        supervisor.spawn(transform, links[1].port2, links[2].port1, restart=transient)
        supervisor.spawn(sink, links[2].port2, links[3].port1, restart=transient)
        print(supervisor.tree())
        report = (await result.receive()).data
        try:
            await result.receive()
        except trio.EndOfChannel:
            print("  main: the result port ended too")
    # The block exited: every stage has returned and been stopped for good.
    for customer, cents in sorted(report["owed"].items()):
        print(f"  {customer:>6} owes {cents / 100:7.2f}")
    total = sum(report["owed"].values())
    print(f"pipeline done: {report['orders']} orders, {total / 100:.2f} in total")
    # --8<-- [end:main]


if __name__ == "__main__":
    trio.run(main)
