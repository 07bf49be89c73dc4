"""Flow control: `send()` waits while the peer holds `SEND_WINDOW` unread messages;
`post_message` never waits. One rule wherever the peer lives (see test_process_window)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import SEND_WINDOW, MessageChannel


async def test_send_waits_while_the_peer_is_a_window_behind() -> None:
    channel = MessageChannel()
    for i in range(SEND_WINDOW):
        await channel.port1.send(i)  # never waits below the window
    sent: list[int] = []

    async def sender() -> None:
        await channel.port1.send(SEND_WINDOW)
        sent.append(SEND_WINDOW)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert sent == []  # the peer has a whole window unread
        assert channel.port2.statistics().queued == SEND_WINDOW
        assert (await channel.port2.receive()).data == 0  # one read: room for one
    assert sent == [SEND_WINDOW]
    received = [(await channel.port2.receive()).data for _ in range(SEND_WINDOW)]
    assert received == list(range(1, SEND_WINDOW + 1))
    channel.port1.close()


async def test_post_message_never_waits(autojump_clock: object) -> None:
    channel = MessageChannel()
    for i in range(3 * SEND_WINDOW):
        channel.port1.post_message(i)
    assert channel.port2.statistics().queued == 3 * SEND_WINDOW
    with trio.move_on_after(5) as scope:  # the guard: the send below must wait
        await channel.port1.send("more")
    assert scope.cancelled_caught
    assert channel.port2.statistics().queued == 3 * SEND_WINDOW  # cancelled: nothing sent
    channel.port1.close()


async def test_a_send_cancelled_while_it_waits_sends_nothing(autojump_clock: object) -> None:
    channel = MessageChannel()
    for i in range(SEND_WINDOW):
        channel.port1.post_message(i)
    with trio.move_on_after(1):
        await channel.port1.send("late")
    channel.port1.close()
    got = [event.data async for event in channel.port2]
    assert got == list(range(SEND_WINDOW))


@pytest.mark.parametrize("who", ["peer", "self"])
async def test_a_waiting_send_fails_when_either_end_closes(who: str) -> None:
    channel = MessageChannel()
    for i in range(SEND_WINDOW):
        channel.port1.post_message(i)
    errors: list[type[BaseException]] = []

    async def sender() -> None:
        try:
            await channel.port1.send("x")
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            errors.append(type(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        (channel.port2 if who == "peer" else channel.port1).close()
    expected = trio.BrokenResourceError if who == "peer" else trio.ClosedResourceError
    assert errors == [expected]
    channel.port1.close()
    channel.port2.close()


async def test_a_handler_reading_makes_room() -> None:
    """A message taken by a handler is read, as one taken by `receive()`."""
    channel = MessageChannel()
    seen: list[object] = []
    channel.port2.onmessage = lambda event: seen.append(event.data)
    for i in range(3 * SEND_WINDOW):
        await channel.port1.send(i)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == list(range(3 * SEND_WINDOW))
    channel.port1.close()
