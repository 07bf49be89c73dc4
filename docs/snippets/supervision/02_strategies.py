import logging

import structlog
import trio
import trio.testing

import actors
from actors import RestartStrategy, open_supervisor

# Keep the crash logs out of this example (see the restart example below for them).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def child():
    me = actors.current_actor()
    if me.name == "b" and me.incarnation == 1:
        await trio.sleep(1)
        raise RuntimeError("b crashed")
    await trio.sleep_forever()


async def main():
    for strategy in RestartStrategy:
        async with open_supervisor(strategy=strategy) as sup:
            for name in "abc":
                sup.spawn(child, name=name)
            await trio.sleep(2)
            incarnations = ", ".join(f"{h.name} #{h.incarnation}" for h in sup.children)
            print(f"{strategy.name:12} {incarnations}  restarts: {sup.statistics().restarts}")
            sup.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
