"""Echo: the smallest actor app, from spawn to death notice.

1. The main task makes a ``MessageChannel``, keeps ``port1`` and spawns an echo actor under a
   supervisor with ``port2``: the port is transferred, so the actor now owns it.
2. ``await actors.ask(port, message)`` sends a request with a fresh reply port; the actor
   answers with ``event.reply(...)``.
3. Cancelling the actor stops it for good, and the supervisor closes the ports it owns. The
   client learns of the death on its own port: ``receive()`` raises ``trio.EndOfChannel``,
   ``onclose`` fires, and a later ``ask`` raises ``trio.BrokenResourceError``.

Run it (after ``python3 dev.py setup``): ``.venv/bin/python examples/echo.py``.
"""

from __future__ import annotations

import trio

import actors
from actors import MessageChannel, MessagePort


async def echo(inbox: MessagePort) -> None:
    """Answer every request with its own text, shouted."""
    async for event in inbox:
        event.reply(f"{event.data.upper()}!")


async def main() -> None:
    channel = MessageChannel()
    client = channel.port1
    async with actors.open_supervisor() as supervisor:
        actor = supervisor.spawn(echo, channel.port2)  # moves port2 into the actor
        print(f"spawned {actor.path}, incarnation {actor.incarnation}")
        for word in ["hello", "is anybody there", "bye"]:
            print(f"  ask {word!r} -> {await actors.ask(client, word)!r}")

        closed = trio.Event()
        client.onclose = lambda event: closed.set()
        actor.cancel()  # stop it for good: the supervisor closes the port it owns
        try:
            await client.receive()
        except trio.EndOfChannel:
            print(f"  receive(): EndOfChannel ({actor.path} is {actor.statistics().state.value})")
        await closed.wait()
        print("  onclose: fired on the client's port too")
        try:
            await actors.ask(client, "still there?")
        except trio.BrokenResourceError:
            print("  ask after the death: BrokenResourceError, nobody can reply")
    print("echo done: the client heard of the actor's death")


if __name__ == "__main__":
    trio.run(main)
