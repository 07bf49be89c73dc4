import logging

import structlog
import trio
import trio.testing

from actors import open_supervisor


def keep(*keys):  # a structlog processor that keeps only these keys, in this order
    def processor(logger, method, event):
        return " ".join(f"{key}={event[key]}" for key in keys if key in event)

    return processor


structlog.configure(
    processors=[keep("event", "actor", "shutdown")],
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
)


def say(text):
    print(f"t={trio.current_time():<4g} {text}")


async def service(name, cleanup):
    say(f"{name} starts")
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):  # a cleanup that takes `cleanup` seconds
            say(f"{name} is cancelled and cleans up for {cleanup}s")
            await trio.sleep(cleanup)
        say(f"{name} has stopped")


async def main():
    async with open_supervisor() as sup:
        sup.spawn(service, "db", 1, name="db")  # the others use it: spawned first
        sup.spawn(service, "cache", 0.5, name="cache")
        sup.spawn(service, "web", 30, name="web", shutdown=2)  # too slow to stop
        await trio.sleep(1)
        say("main calls sup.cancel()")
        sup.cancel()
    say("the block has exited")


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
