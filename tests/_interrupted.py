"""Ctrl-C in a program with a process actor (test_process_lifecycle.py).

Run in a session of its own (it checks), it sends SIGINT to its whole process group once its
process actor runs, as a terminal's Ctrl-C does. The program gets KeyboardInterrupt, its
supervisor stops the actor in order (the child ignores SIGINT), and it prints ``interrupted``
then what the actor posted from its ``finally`` block.
"""

from __future__ import annotations

import os
import signal

import _process_actors
import trio

import actors


async def main(channel: actors.MessageChannel) -> None:
    async with actors.open_supervisor() as sup:
        sup.spawn(_process_actors.posts_from_finally, channel.port2, process=True)
        await channel.port1.receive()
        os.killpg(os.getpgrp(), signal.SIGINT)
        await trio.sleep_forever()


async def rest(port: actors.MessagePort) -> list[object]:
    return [event.data async for event in port]


if __name__ == "__main__":
    assert os.getsid(0) == os.getpid(), "run me in a session of my own"
    channel = actors.MessageChannel()
    try:
        trio.run(main, channel)
    except* KeyboardInterrupt:
        print("interrupted")
    print(trio.run(rest, channel.port1))
