import logging

import structlog
import trio

import actors
from actors import MessageChannel, Restart, open_supervisor

structlog.configure(
    processors=[
        structlog.processors.KeyValueRenderer(
            key_order=["event", "actor", "incarnation", "intensity_left"],
            drop_missing=True,
        ),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
)


# --8<-- [start:main]
async def account(deposits, updates, alive):
    balance = 0
    async for event in deposits:
        balance += event.data  # "ten" raises TypeError: the actor crashes
        updates.post_message(balance)


async def main():
    deposits, updates = MessageChannel(), MessageChannel()
    alive = MessageChannel()  # carries no messages, only the close
    gone = trio.Event()

    def on_close(event):
        print("main: close event on the alive port")
        gone.set()

    alive.port1.onclose = on_close
    alive.port1.start()  # a close event comes through the queue

    async with open_supervisor() as sup:
        sup.spawn(
            account,
            deposits.port2,
            updates.port1,
            alive.port2,
            restart=Restart.TEMPORARY,
        )
        for amount in [10, 5, "ten", 1]:
            deposits.port1.post_message(amount)
        await gone.wait()

        async for event in updates.port2:  # all it said, then the end
            print("main: balance", event.data)
        print("main: updates ended: EndOfChannel")

        try:
            await actors.ask(deposits.port1, 1)
        except trio.BrokenResourceError as exc:
            print("main: ask raised BrokenResourceError:", exc)


trio.run(main)
# --8<-- [end:main]
