import trio
import trio.testing

import actors
from actors import MessageChannel, MessagePort, PortCollection, Restart


async def fast_source(out: MessagePort) -> None:
    """Posts 20 items as fast as it can: post_message never waits."""
    for n in range(20):
        out.post_message(n)
    print(f"  fast_source done at t={trio.current_time():.0f}s")
    out.close()


async def bounded_source(out: MessagePort) -> None:
    """Sends 20 items through a one-member PortCollection: send() waits for room."""
    link = PortCollection([out], max_queued=3)  # the default policy: WAIT
    for n in range(20):
        await link.send(n)  # waits while 3 items are queued at the next stage
    print(f"  bounded_source done at t={trio.current_time():.0f}s")
    out.close()


async def slow_stage(inbox: MessagePort) -> None:
    """Takes one second per item."""
    async for _ in inbox:
        await trio.sleep(1)
    print(f"  slow_stage done at t={trio.current_time():.0f}s")


async def run(source) -> None:
    link = MessageChannel()
    async with actors.open_supervisor() as supervisor:
        transient = Restart.TRANSIENT
        supervisor.spawn(source, link.port1, restart=transient)
        stage = supervisor.spawn(slow_stage, link.port2, restart=transient)
        most = 0
        while stage.statistics().state is actors.ActorState.RUNNING:
            most = max(most, stage.statistics().queued)
            await trio.sleep(0.5)
    print(f"  most items waiting at slow_stage: {most}")


for source in [fast_source, bounded_source]:
    print(f"{source.__name__}:")
    trio.run(run, source, clock=trio.testing.MockClock(autojump_threshold=0))
