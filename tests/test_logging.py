"""Logging goes through structlog, with the port id bound, and is quiet until configured."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest
import structlog
import trio
import trio.testing
from _helpers import close_ports, drops_entangled_ports

from actors import MessageChannel


async def test_transfer_close_and_drop_are_logged_at_debug_with_port_ids() -> None:
    """Transfers, closes and dropped messages are debug events naming the port."""
    with structlog.testing.capture_logs() as logs:
        carrier, moving = MessageChannel(), MessageChannel()
        moving.port2.post_message("queued")
        carrier.port1.post_message(None, transfer=[moving.port2])
        carrier.port2.close()  # drops the message that carries the port, closing the port
    events = [(log["event"], log["log_level"]) for log in logs]
    assert ("port_transferred", "debug") in events
    assert ("messages_dropped", "debug") in events
    assert ("port_closed", "debug") in events
    assert all(log["port"].startswith("p") for log in logs)


async def test_doomed_message_is_a_warning() -> None:
    """Transferring the target port dooms the message and logs a warning (D7)."""
    with structlog.testing.capture_logs() as logs:
        channel = MessageChannel()
        channel.port1.post_message("x", transfer=[channel.port2])
    assert [log["event"] for log in logs if log["log_level"] == "warning"] == ["message_doomed"]


async def test_handler_exception_is_logged_with_traceback_and_dispatch_goes_on() -> None:
    """A raising handler is reported at error level; later messages still arrive."""
    channel, seen = MessageChannel(), []

    def handler(event: object) -> None:
        seen.append(event)
        raise ValueError("boom")

    with structlog.testing.capture_logs() as logs:
        channel.port2.onmessage = handler
        channel.port1.post_message(1)
        channel.port1.post_message(2)
        await trio.testing.wait_all_tasks_blocked()
    failures = [log for log in logs if log["event"] == "event_listener_failed"]
    assert len(seen) == 2
    assert len(failures) == 2
    assert failures[0]["log_level"] == "error"
    assert isinstance(failures[0]["exc_info"], ValueError)  # the exception, for processors
    assert failures[0]["event_type"] == "message"
    close_ports(channel)


def test_library_is_silent_below_warning_by_default() -> None:
    """With structlog unconfigured, debug events print nothing; errors reach stderr."""
    code = """
import trio, trio.testing
from actors import MessageChannel
async def main():
    c, d = MessageChannel(), MessageChannel()
    c.port1.post_message(None, transfer=[d.port1])
    c.port2.close()
    c2 = MessageChannel()
    c2.port2.onmessage = lambda e: 1 / 0
    c2.port1.post_message("x")
    await trio.testing.wait_all_tasks_blocked()
trio.run(main)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "port_transferred" not in done.stderr
    assert "event_listener_failed" in done.stderr
    assert "ZeroDivisionError" in done.stderr


@drops_entangled_ports
@pytest.mark.parametrize("gc_first", [True, False])
async def test_collected_port_is_logged(gc_first: bool) -> None:
    """A port collected while entangled logs ``port_collected``."""
    with structlog.testing.capture_logs() as logs:
        channel = MessageChannel()
        keep = channel.port1
        del channel
        if gc_first:
            gc.collect()
        await trio.testing.wait_all_tasks_blocked()
    assert "port_collected" in [log["event"] for log in logs]
    assert keep.statistics().entangled is False
    keep.close()


async def test_collecting_a_port_with_nothing_to_report_logs_nothing() -> None:
    """A port already disentangled, with nothing queued, is collected silently."""
    channel = MessageChannel()
    channel.port2.close()
    with structlog.testing.capture_logs() as logs:
        del channel
        gc.collect()
        await trio.testing.wait_all_tasks_blocked()
    assert "port_collected" not in [log["event"] for log in logs]
