import ctypes

import structlog
import trio

import actors


async def fragile(jobs: actors.MessagePort) -> None:
    async for event in jobs:
        if event.data == "poison":
            ctypes.string_at(0)  # a segfault: in-process, it would take the whole program down
        event.reply(f"{event.data}: ok (incarnation {actors.current_actor().incarnation})")


async def main() -> None:
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # quiet, for the page
    channel = actors.MessageChannel()
    async with actors.open_supervisor() as sup:
        handle = sup.spawn(fragile, channel.port2, process=True)
        print(await actors.ask(channel.port1, "first"))
        channel.port1.post_message("poison")
        print(await actors.ask(channel.port1, "second"))  # waits at the slot port, not lost
        crash = handle.statistics().last_crash
        print("it crashed with", type(crash).__name__, "and was restarted:", handle.incarnation)
        sup.cancel()


if __name__ == "__main__":
    trio.run(main)
