import logging

import structlog
import trio
import trio.testing

from actors import open_supervisor

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
async def connection():
    await trio.sleep(1)
    if trio.current_time() < 3:  # the database is down for the first 3 seconds
        raise ConnectionError(f"down at {trio.current_time():g}s")
    await trio.sleep_forever()


async def cache():
    await trio.sleep_forever()


async def store():  # an actor that supervises its own children
    # This supervisor's path is the actor's: root/store.
    async with open_supervisor(max_restarts=1, within=10) as sup:
        sup.spawn(connection)
        sup.spawn(cache)


async def api():
    await trio.sleep_forever()


async def main():
    async with open_supervisor() as root:
        root.spawn(store)
        root.spawn(api)
        await trio.sleep(5)
        print(root.tree())
        root.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
# --8<-- [end:main]
