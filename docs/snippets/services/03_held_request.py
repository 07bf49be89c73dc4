import logging

import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, Restart, open_supervisor


def keep(*keys):  # a structlog processor that keeps only these keys, in this order
    def processor(logger, method, event):
        return " ".join(f"{key}={event[key]}" for key in keys if key in event)

    return processor


structlog.configure(
    processors=[keep("event", "actor", "port", "waited")],
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
)


async def replier(inbox):
    """The mistake: it keeps the request and answers on its inbox, not with event.reply()."""
    async for event in inbox:
        inbox.post_message(event.data * 2)


async def asker(port):
    with trio.move_on_after(10) as scope:  # the idiom: a deadline of your own
        print(await actors.ask(port, 21))
    if scope.cancelled_caught:
        print(f"t={trio.current_time():g}s no answer: gave up; the reply port closed")


async def main():
    channel = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(replier, channel.port2, restart=Restart.TRANSIENT)
        sup.spawn(asker, channel.port1, restart=Restart.TRANSIENT)
        await trio.sleep(11)
        sup.cancel()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
