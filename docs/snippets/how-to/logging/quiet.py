import contextlib
import io

import trio
import trio.testing

import actors
from actors import MessageChannel, MessagePort


async def worker(inbox: MessagePort) -> None:
    async for event in inbox:
        print(f"100 // {event.data} = {100 // event.data}")


async def main() -> None:
    channel = MessageChannel()
    async with actors.open_supervisor() as supervisor:
        supervisor.spawn(worker, channel.port2)
        for n in [4, 0, 5]:  # 0 crashes incarnation 1; incarnation 2 gets the 5
            channel.port1.post_message(n)
        await trio.testing.wait_all_tasks_blocked()
        supervisor.cancel()


stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):  # catch it, to print it below
    trio.run(main)
print("on stderr:")
for line in stderr.getvalue().splitlines():
    if not line.startswith(" "):  # leave out the traceback's frames
        print(f"  {line}")
