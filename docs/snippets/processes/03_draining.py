import structlog
import trio

import actors


async def counter(inbox: actors.MessagePort, out: actors.MessagePort) -> None:
    """Counts what arrives until None, a burst per checkpoint."""
    count = bursts = 0
    async for event in inbox:  # a checkpoint: it waits for the first of a burst
        bursts += 1
        while event.data is not None:
            count += 1
            try:
                event = inbox.receive_nowait()  # no checkpoint: what else has arrived
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        if event.data is None:
            out.post_message((count, bursts < count))
            return


async def main() -> None:
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # quiet, for the page
    inbox, out = actors.MessageChannel(), actors.MessageChannel()
    async with actors.open_supervisor() as sup:
        sup.spawn(counter, inbox.port2, out.port2, process=True)
        for n in range(10_000):
            inbox.port1.post_message(n)
        inbox.port1.post_message(None)
        count, fewer_checkpoints = (await out.port1.receive()).data
        print(f"{count} messages, fewer checkpoints than messages: {fewer_checkpoints}")
        sup.cancel()


if __name__ == "__main__":
    trio.run(main)
