"""Process actors for tests/test_process_homes.py (a child process imports them by name)."""

from __future__ import annotations

import os
import signal

import trio

import actors


async def reader(
    inbox: actors.MessagePort,
    report: actors.MessagePort,
    control: actors.MessagePort,
    take: int,
    how: str,
) -> None:
    """Incarnation 1 reads `take` messages, reports each, says it waits, and ends as `how`
    says when `control` tells it to; later incarnations report everything they read, and
    talk over the ports inside messages."""
    number = actors.current_actor().incarnation
    if number == 1:
        nowait, how = how.endswith("-nowait"), how.removesuffix("-nowait")
        for _ in range(take):
            event = await take_one(inbox, nowait)
            report.post_message(("got", number, event.data, len(event.ports)))
        report.post_message(("waiting", os.getpid()))
        await control.receive()
        die(how)
    async for event in inbox:
        report.post_message(("got", number, event.data, len(event.ports)))
        for port in event.ports:  # a port carried by an unread message: alive and well
            port.post_message(("hello from", number))
            reply = await port.receive()
            report.post_message(("reply", number, reply.data))


async def keeper(inbox: actors.MessagePort, report: actors.MessagePort) -> None:
    """Reads one message carrying a port and keeps that port; then waits to be killed."""
    event = await inbox.receive()
    kept = event.ports[0]
    kept.post_message("kept")
    report.post_message(("waiting", os.getpid()))
    await trio.sleep_forever()


async def mover(inbox: actors.MessagePort, report: actors.MessagePort) -> None:
    """Sends its own slot port `inbox` back to the parent through `report`, then waits."""
    report.post_message(("here is my inbox", os.getpid()), [inbox])
    await trio.sleep_forever()


async def take_one(inbox: actors.MessagePort, nowait: bool) -> actors.MessageEvent:
    """The next message: by `receive_nowait()` if `nowait` and one is there."""
    if nowait:
        try:
            return inbox.receive_nowait()
        except trio.WouldBlock:
            pass
    return await inbox.receive()


def die(how: str) -> None:
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "exit":
        os._exit(3)
    raise RuntimeError("asked to crash")


async def slow_reader(inbox: actors.MessagePort, report: actors.MessagePort) -> None:
    """Reads `n` messages each time it is told `n` on `report`, and says how far it got."""
    read = 0
    async for order in report:
        for _ in range(order.data):
            await inbox.receive()
            read += 1
        report.post_message(("read", read))


async def eager_sender(out: actors.MessagePort, report: actors.MessagePort, count: int) -> None:
    """Sends `count` messages with `send()`, saying after each one how many went."""
    for i in range(count):
        await out.send(i)
        report.post_message(("sent", i + 1))
    await trio.sleep_forever()


async def echo(inbox: actors.MessagePort) -> None:
    async for event in inbox:
        event.reply(event.data)


async def tells_types(inbox: actors.MessagePort, report: actors.MessagePort) -> None:
    """Reports the type, data and number of ports of each event at `inbox`, until it closes."""
    while True:
        try:
            event = await inbox.receive()
        except trio.EndOfChannel:
            return
        report.post_message((event.type, event.data, len(event.ports)))


async def forwarder(inbox: actors.MessagePort, report: actors.MessagePort) -> None:
    """The first message at `inbox` carries `target`; the ports of every later one go on to
    it, in a message of their own (and `report` hears of each)."""
    target = (await inbox.receive()).ports[0]
    async for event in inbox:
        target.post_message(event.data, list(event.ports))
        report.post_message(("forwarded", event.data[0], os.getpid()))


async def drain(inbox: actors.MessagePort, report: actors.MessagePort) -> None:
    """The first message at `inbox` carries `source`; each message there is `(tag, n)` with a
    port, from which it reads numbers until it has `n` or the port closes, reporting
    `("done", tag, numbers read, whether they came in order)`, then closes it."""
    source = (await inbox.receive()).ports[0]

    async def read(tag: int, port: actors.MessagePort, n: int) -> None:
        got: list[int] = []
        try:
            async for event in port:
                got.append(event.data)
                if len(got) == n:
                    break
        finally:
            report.post_message(("done", tag, len(got), got == list(range(len(got)))))
            port.close()

    async with trio.open_nursery() as nursery:
        async for event in source:
            tag, n = event.data
            nursery.start_soon(read, tag, event.ports[0], n)
