"""A counter actor and its tests: ask, statistics, restarts and the death notice."""

# --8<-- [start:counter]
import pytest
import trio
import trio.testing

import actors
from actors import ActorState, MessageChannel, Restart, open_supervisor


async def counter(inbox):
    """Add up ("add", n) requests; answer "total" with the sum so far."""
    total = 0
    async for event in inbox:
        match event.data:
            case ("add", n):
                total += n  # ("add", "ten") raises TypeError: the counter crashes
            case "total":
                event.reply(total)
    # --8<-- [end:counter]


# --8<-- [start:ask]
async def test_the_counter_adds_up():
    inbox = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(counter, inbox.port2, restart=Restart.TRANSIENT)
        inbox.port1.post_message(("add", 2))
        inbox.port1.post_message(("add", 3))
        assert await actors.ask(inbox.port1, "total") == 5
        inbox.port1.close()  # its loop ends; TRANSIENT: it stops for good
    assert handle.statistics().state is ActorState.STOPPED
    assert handle.statistics().last_crash is None
    # --8<-- [end:ask]


# --8<-- [start:restart]
async def test_a_bad_request_restarts_the_counter_from_zero():
    inbox = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(counter, inbox.port2)
        inbox.port1.post_message(("add", 2))
        inbox.port1.post_message(("add", "ten"))
        assert handle.incarnation == 1  # post_message only queues: nothing ran yet

        await trio.testing.wait_all_tasks_blocked()  # all idle: the crash is handled
        stats = handle.statistics()
        assert stats.state is ActorState.RUNNING
        assert (stats.incarnation, stats.restarts) == (2, 1)
        assert isinstance(stats.last_crash, TypeError)
        assert stats.queued == 0  # incarnation 2 is waiting for the next request
        assert sup.statistics().restarts == 1
        assert sup.statistics().intensity_left == 2  # of 3 within 5 seconds

        assert await actors.ask(inbox.port1, "total") == 0  # a fresh total
        sup.cancel()
    # --8<-- [end:restart]


# --8<-- [start:death]
async def test_the_client_hears_when_a_temporary_counter_dies():
    inbox = MessageChannel()
    notices = []
    inbox.port1.onclose = lambda event: notices.append(event.type)
    inbox.port1.start()  # the close event comes through the port's queue
    async with open_supervisor() as sup:
        handle = sup.spawn(counter, inbox.port2, restart=Restart.TEMPORARY)
        inbox.port1.post_message(("add", "ten"))
        await trio.testing.wait_all_tasks_blocked()  # the crash, then the close event
        assert notices == ["close"]
        assert handle.statistics().state is ActorState.STOPPED
        assert sup.statistics().restarts == 0
    with pytest.raises(trio.BrokenResourceError):  # nobody is left to answer
        await actors.ask(inbox.port1, "total")
    # --8<-- [end:death]
