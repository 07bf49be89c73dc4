"""messageerror: a message that could not be deserialized (only relays produce these).

Within one runtime a message always deserializes, so these tests put the item a relay
would deliver (``MESSAGE_ERROR``) straight into a port's queue, through the same
``PortCore.deliver`` a relay will call, and check where the event goes.
"""

from __future__ import annotations

import trio
import trio.testing
from _helpers import close_ports

from actors import MessageChannel, MessageEvent
from actors._queue import MESSAGE_ERROR


def deliver_error(channel: MessageChannel) -> None:
    core = channel.port2._core
    assert core is not None
    core.deliver(MESSAGE_ERROR, "could not deserialize")


async def test_messageerror_goes_to_onmessageerror_in_order() -> None:
    """With handlers, a messageerror event reaches onmessageerror between its neighbours."""
    channel, log = MessageChannel(), []
    channel.port2.onmessage = lambda e: log.append(("message", e.data))
    channel.port2.onmessageerror = lambda e: log.append((e.type, e.data, e.ports))
    channel.port1.post_message(1)
    deliver_error(channel)
    channel.port1.post_message(2)
    await trio.testing.wait_all_tasks_blocked()
    assert log == [("message", 1), ("messageerror", None, ()), ("message", 2)]
    close_ports(channel)


async def test_receive_returns_a_messageerror_event() -> None:
    """Without handlers, receive() returns the messageerror event in its place."""
    channel = MessageChannel()
    deliver_error(channel)
    channel.port1.post_message("after")
    event = await channel.port2.receive()
    assert isinstance(event, MessageEvent)
    assert (event.type, event.data, event.target) == ("messageerror", None, channel.port2)
    assert (await channel.port2.receive()).data == "after"
    close_ports(channel)


async def test_onmessageerror_does_not_start_the_queue() -> None:
    """Setting onmessageerror leaves the queue disabled (rule 38, D1)."""
    channel, log = MessageChannel(), []
    channel.port2.onmessageerror = log.append
    deliver_error(channel)
    await trio.testing.wait_all_tasks_blocked()
    assert log == []
    assert channel.port2.statistics().started is False
    close_ports(channel)
