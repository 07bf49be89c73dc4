import os

import trio

import actors


async def square(inbox: actors.MessagePort) -> None:
    """A process actor: a module-level async function, run in a child process."""
    async for event in inbox:
        event.reply((event.data**2, os.getpid()))


async def main() -> None:
    channel = actors.MessageChannel()
    async with actors.open_supervisor() as sup:
        handle = sup.spawn(square, channel.port2, process=True)  # the one new argument
        value, pid = await actors.ask(channel.port1, 12)
        print(value, "computed in another process:", pid != os.getpid())
        print("its pid is the handle's:", pid == handle.pid)
        sup.cancel()


if __name__ == "__main__":
    trio.run(main)
