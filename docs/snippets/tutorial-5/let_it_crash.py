import logging

import structlog
import trio
import trio.testing

import actors
from actors import MessageChannel, open_supervisor

# --8<-- [start:logging]
# One line per event, info and above, on stdout.
structlog.configure(
    processors=[
        structlog.processors.KeyValueRenderer(
            key_order=["event", "actor", "incarnation", "intensity_left"],
            drop_missing=True,
        ),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
)
# --8<-- [end:logging]


# --8<-- [start:main]
async def parser(lines, numbers):
    me = actors.current_actor()
    async for event in lines:
        number = int(event.data)  # "three" raises ValueError: the actor crashes
        numbers.post_message(f"{number} (incarnation {me.incarnation})")


async def main():
    lines, numbers = MessageChannel(), MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(parser, lines.port2, numbers.port1)
        for text in ["1", "2", "three", "4", "5"]:
            lines.port1.post_message(text)
        await trio.testing.wait_all_tasks_blocked()  # the parser is done
        for _ in range(4):
            print("main:", (await numbers.port2.receive()).data)
        print("main: my port to the parser is", lines.port1)
        sup.cancel()


trio.run(main)
# --8<-- [end:main]
