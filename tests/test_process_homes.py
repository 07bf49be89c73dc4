"""A process actor's slot ports are kept by its parent: however its process ends, the
messages it had not read go to its next incarnation, none lost and none twice; the ports it
had read and kept close; a slot port it moved on lives on without it."""

from __future__ import annotations

import datetime
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import trio
from _homed_actors import drain, echo, forwarder, keeper, mover, reader, tells_types

from actors import DataCloneError, MessageChannel, MessagePort, Restart, ask, open_supervisor

pytestmark = pytest.mark.usefixtures("logs")


def children() -> list[int]:
    """This process's child processes (none may be left after a test)."""
    found: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(pid) for pid in text)
    return found


async def until(port: MessagePort, kind: str) -> tuple[list[Any], Any]:
    """What arrives at `port` before a message whose first item is `kind`, and that one."""
    before = []
    while True:
        data = (await port.receive()).data
        if data[0] == kind:
            return before, data
        before.append(data)


@pytest.mark.parametrize("how", ["kill", "exit", "crash", "kill-nowait"])
async def test_what_a_dead_process_had_not_read_goes_to_the_next_incarnation(how: str) -> None:
    inbox, report, control = MessageChannel(), MessageChannel(), MessageChannel()
    with trio.fail_after(15):
        async with open_supervisor() as sup:
            sup.spawn(reader, inbox.port2, report.port2, control.port2, 3, how, process=True)
            for i in range(10):
                inbox.port1.post_message(i)
            got, _ = await until(report.port1, "waiting")
            control.port1.post_message("now")  # SIGKILL, os._exit(3) or an exception
            while len(got) < 10:
                got.append((await report.port1.receive()).data)
            sup.cancel()
    assert [(inc, n) for _, inc, n, _ in got] == [(1, 0), (1, 1), (1, 2)] + [
        (2, n) for n in range(3, 10)
    ]
    assert children() == []


async def test_a_port_in_an_unread_message_is_still_alive_in_the_next_incarnation() -> None:
    inbox, report, control, carried = (MessageChannel() for _ in range(4))
    with trio.fail_after(15):
        async with open_supervisor() as sup:
            sup.spawn(reader, inbox.port2, report.port2, control.port2, 1, "kill", process=True)
            inbox.port1.post_message(0)
            inbox.port1.post_message("a port", [carried.port2])
            await until(report.port1, "waiting")
            carried.port1.post_message("queued before the crash")  # kept with the port
            control.port1.post_message("now")
            _, got = await until(report.port1, "got")
            assert got == ("got", 2, "a port", 1)
            assert (await carried.port1.receive()).data == ("hello from", 2)
            carried.port1.post_message("welcome")
            _, reply = await until(report.port1, "reply")
            sup.cancel()
    # the message queued at the carried port before the death came first
    assert reply == ("reply", 2, "queued before the crash")
    assert children() == []


async def test_a_port_a_dead_incarnation_had_read_closes() -> None:
    inbox, report, carried = MessageChannel(), MessageChannel(), MessageChannel()
    with trio.fail_after(15):
        async with open_supervisor() as sup:
            handle = sup.spawn(
                keeper, inbox.port2, report.port2, process=True, restart=Restart.TEMPORARY
            )
            inbox.port1.post_message("take this", [carried.port2])
            _, (_, pid) = await until(report.port1, "waiting")
            assert (await carried.port1.receive()).data == "kept"
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(trio.EndOfChannel):
                await carried.port1.receive()
            await handle.wait()
    assert children() == []


async def test_a_slot_port_the_process_moved_on_outlives_it() -> None:
    inbox, report = MessageChannel(), MessageChannel()
    with trio.fail_after(15):
        async with open_supervisor() as sup:
            handle = sup.spawn(
                mover, inbox.port2, report.port2, process=True, restart=Restart.TEMPORARY
            )
            event = await report.port1.receive()
            (_, pid), (returned,) = event.data, event.ports
            os.kill(pid, signal.SIGKILL)
            await handle.wait()
            inbox.port1.post_message("still there?")
            assert (await returned.receive()).data == "still there?"
            returned.post_message("yes")
            assert (await inbox.port1.receive()).data == "yes"
            returned.close()
            with pytest.raises(trio.EndOfChannel):
                await inbox.port1.receive()
    assert children() == []


async def test_conversations_with_a_process_leave_nothing_behind() -> None:
    """Each ask carries a reply port through the slot port (kept by the parent until read);
    once answered and closed, nothing of it stays in the parent's routes."""
    from actors._wire.node import local_node

    inbox = MessageChannel()
    with trio.fail_after(20):
        async with open_supervisor() as sup:
            sup.spawn(echo, inbox.port2, process=True)
            assert await ask(inbox.port1, -1) == -1
            node = local_node()
            before = len(node.ends)
            for i in range(300):
                assert await ask(inbox.port1, i) == i
            assert len(node.ends) <= before + 1
            sup.cancel()
    assert children() == []


async def test_what_a_process_actor_has_read_is_not_counted_as_queued() -> None:
    """`queued` counts the messages a process actor has not read: those it read leave the
    count at once (its read cursor says so), not at the next acknowledgement."""
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(echo, channel.port2, process=True, restart=Restart.TEMPORARY)
        for i in range(3):
            assert await ask(channel.port1, i) == i
        assert handle.statistics().queued == 0
        assert sup.tree().children[0].queued == 0
        channel.port1.close()


class _OddZone(datetime.tzinfo):
    """A tzinfo that clone copies in-process, but the wire cannot carry."""

    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(hours=1)

    def dst(self, dt: datetime.datetime | None) -> None:
        return None


async def test_a_message_the_wire_refuses_at_a_slot_port(logs: list[dict[str, Any]]) -> None:
    """A post to a process actor's slot port with a transfer list the wire refuses raises
    `DataCloneError` at the sender, nothing detached (D3), as for any port in another
    process (while the actor's process runs). Without a transfer list (nothing to detach)
    the message is queued in the parent and encoded only when it is sent to the child:
    refused then, the actor gets a messageerror in its place, and the parent logs
    `message_not_sendable`."""
    inbox, report, carried = MessageChannel(), MessageChannel(), MessageChannel()
    when = datetime.datetime(2020, 1, 1, tzinfo=_OddZone())
    with trio.fail_after(15):
        async with open_supervisor() as sup:
            sup.spawn(
                tells_types, inbox.port2, report.port2, process=True, restart=Restart.TEMPORARY
            )
            inbox.port1.post_message("up?")
            assert (await report.port1.receive()).data == ("message", "up?", 0)
            with pytest.raises(DataCloneError, match="tzinfo"):
                inbox.port1.post_message({"when": when}, [carried.port2])
            assert not carried.port2.statistics().transferred
            inbox.port1.post_message({"when": when})
            inbox.port1.post_message("with a port", [carried.port2])
            assert (await report.port1.receive()).data == ("messageerror", None, 0)
            assert (await report.port1.receive()).data == ("message", "with a port", 1)
            inbox.port1.close()
            carried.port1.close()
    assert [e["event"] for e in logs if e["event"] == "message_not_sendable"] == [
        "message_not_sendable"
    ]
    assert children() == []


@pytest.mark.parametrize("attempt", range(4))  # the kill lands at another point each time
async def test_ports_on_their_way_through_a_killed_process_close_or_arrive_whole(
    attempt: int,
) -> None:
    """The parent posts ports to process A's slot port, each the end of a stream the parent
    keeps posting on; A passes each on to process B; A is SIGKILLed while it does. Whatever
    A had passed on and whatever it had not: each stream either arrives at B whole, in
    order, or closes at both ends after a prefix (its move through A had not settled when A
    died, so what was sent its old way may be lost with A); no sender waits for ever."""
    rounds, n = 8, 3000
    to_a, from_a, to_b, from_b, link = (MessageChannel() for _ in range(5))
    with trio.fail_after(30):
        async with open_supervisor() as sup:
            a = sup.spawn(
                forwarder, to_a.port2, from_a.port2, process=True, restart=Restart.TEMPORARY
            )
            b = sup.spawn(drain, to_b.port2, from_b.port2, process=True, restart=Restart.TEMPORARY)
            to_b.port1.post_message("source", [link.port2])
            to_a.port1.post_message("target", [link.port1])

            async def stream(port: MessagePort) -> None:
                for i in range(n):
                    port.post_message(i)
                    if i % 10 == 0:
                        await trio.lowlevel.checkpoint()
                with pytest.raises(trio.EndOfChannel):  # B closes it once it has all, or
                    await port.receive()  # it broke: never a wait for ever

            async with trio.open_nursery() as streams:
                for tag in range(rounds):
                    channel = MessageChannel()
                    to_a.port1.post_message((tag, n), [channel.port2])
                    streams.start_soon(stream, channel.port1)
                # A is passing them on: now it dies
                assert (await from_a.port1.receive()).data[0] == "forwarded"
                os.kill(a.pid or 0, signal.SIGKILL)
            await b.wait()  # its source was A's: closed with A, so B is done once all are
            reports = [
                (await from_b.port1.receive()).data for _ in range(from_b.port1.statistics().queued)
            ]
            for port in (to_a.port1, from_a.port1, to_b.port1, from_b.port1):
                port.close()
            sup.cancel()
    assert reports, "B got none of the ports"
    assert all(in_order for _, _, _, in_order in reports), reports
    assert all(count <= n for _, _, count, _ in reports), reports
    assert children() == []
