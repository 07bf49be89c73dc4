import logging

import structlog
import trio
import trio.testing

import actors
from actors import RestartStrategy, open_supervisor

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
async def child():
    me = actors.current_actor()
    if me.name == "b" and me.incarnation == 1:
        await trio.sleep(1)
        raise RuntimeError("b fails")
    await trio.sleep_forever()


async def main():
    for strategy in RestartStrategy:
        print(f"--- {strategy.name}")
        async with open_supervisor(strategy=strategy) as sup:
            for name in ["a", "b", "c"]:  # spawn order matters for REST_FOR_ONE
                sup.spawn(child, name=name)
            await trio.sleep(2)
            runs = {child.name: child.incarnation for child in sup.children}
            print("incarnations:", runs)
            sup.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
# --8<-- [end:main]
