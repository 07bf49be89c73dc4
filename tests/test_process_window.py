"""Flow control across a process boundary: `send()` waits while the peer holds `SEND_WINDOW`
unread messages, whichever side is in the child (acknowledgements every 128 messages)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from _homed_actors import eager_sender, slow_reader

from actors import SEND_WINDOW, MessageChannel, Restart, open_supervisor

pytestmark = pytest.mark.usefixtures("logs")


async def test_a_parent_sending_to_a_process_that_does_not_read_waits() -> None:
    inbox, report = MessageChannel(), MessageChannel()
    with trio.fail_after(20):
        async with open_supervisor() as sup:
            sup.spawn(slow_reader, inbox.port2, report.port2, process=True)
            for i in range(SEND_WINDOW):
                await inbox.port1.send(i)
            with trio.move_on_after(0.5) as waited:  # a bounded check that it waits
                await inbox.port1.send("one too many")
            assert waited.cancelled_caught
            report.port1.post_message(200)  # the child reads 200: an ack comes at 128
            assert (await report.port1.receive()).data == ("read", 200)
            with trio.fail_after(5):
                await inbox.port1.send("room again")
            report.port1.post_message(SEND_WINDOW - 200 + 1)  # everything, the late one too
            assert (await report.port1.receive()).data == ("read", SEND_WINDOW + 1)
            sup.cancel()


async def test_a_process_sending_to_a_parent_that_does_not_read_waits() -> None:
    out, report = MessageChannel(), MessageChannel()
    total = SEND_WINDOW + 300
    with trio.fail_after(20):
        async with open_supervisor() as sup:
            sup.spawn(
                eager_sender,
                out.port2,
                report.port2,
                total,
                process=True,
                restart=Restart.TEMPORARY,
            )
            sent = 0
            with trio.move_on_after(1):  # it stops at the window: nobody reads `out`
                async for event in report.port1:
                    sent = event.data[1]
            assert SEND_WINDOW <= sent < total
            for i in range(total):  # reading makes room; every message arrives, in order
                assert (await out.port1.receive()).data == i
            while sent < total:
                sent = (await report.port1.receive()).data[1]
            sup.cancel()
