"""Ports that are garbage-collected: what it costs the trio run, and who hears of it.

A port collected while entangled disentangles, so its peer gets ``close`` (D5). The
collection may happen anywhere (another thread, a garbage-collection pass inside our own
code), so the work is handed to the trio run; these tests check that it is handed over in
batches, not one wake-up of the run per port.
"""

from __future__ import annotations

import gc
import sys
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import drops_entangled_ports

from actors import MessageChannel, MessagePort


class CountingToken:
    """A stand-in for the run's ``TrioToken`` that counts ``run_sync_soon`` calls."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token
        self.calls = 0

    def run_sync_soon(self, fn: Any, *args: Any, idempotent: bool = False) -> None:
        self.calls += 1
        self.token.run_sync_soon(fn, *args, idempotent=idempotent)


def drop_ports(count: int, token: object) -> list[MessagePort]:
    """Make ``count`` channels whose ``port1`` uses ``token``; drop every port1, keep port2."""
    channels = [MessageChannel() for _ in range(count)]
    for channel in channels:
        channel.port1._core.token = token  # type: ignore[assignment]
    survivors = [channel.port2 for channel in channels]
    channels.clear()  # every port1 is collected here, in the run's thread
    return survivors


@drops_entangled_ports
async def test_collected_ports_wake_the_run_once_per_batch() -> None:
    """1,000 ports collected together wake the run far fewer than 1,000 times."""
    token = CountingToken(trio.lowlevel.current_trio_token())
    survivors = drop_ports(1000, token)
    await trio.testing.wait_all_tasks_blocked()
    assert token.calls <= 2
    for port in survivors:
        port.close()


@drops_entangled_ports
async def test_every_peer_of_a_batch_of_collected_ports_gets_close() -> None:
    """Each of 1,000 ports collected together disentangles: every peer hears close."""
    token = CountingToken(trio.lowlevel.current_trio_token())
    survivors = drop_ports(1000, token)
    await trio.testing.wait_all_tasks_blocked()
    assert [port.statistics().entangled for port in survivors] == [False] * 1000
    with pytest.raises(trio.EndOfChannel):
        await survivors[-1].receive()
    for port in survivors:
        port.close()


@drops_entangled_ports
async def test_ports_collected_while_a_batch_is_handled_are_not_missed() -> None:
    """A port collected while the run handles a batch is handled too (by that or a next batch)."""
    token = CountingToken(trio.lowlevel.current_trio_token())
    first = drop_ports(10, token)
    later: list[MessagePort] = []
    # A close handler runs while nothing else does; collecting ports there, after the batch
    # that woke the run began, must not lose them.
    first[0].onclose = lambda event: later.extend(drop_ports(10, token))
    first[0].start()
    await trio.testing.wait_all_tasks_blocked()
    assert len(later) == 10
    assert [port.statistics().entangled for port in first + later] == [False] * 20
    for port in first + later:
        port.close()


@drops_entangled_ports
def test_a_finished_run_leaves_no_pending_list_behind() -> None:
    """Once a run has finished and its ports are gone, nothing of it stays in the batching."""
    from actors import _inbox

    async def main() -> weakref.ref[trio.lowlevel.TrioToken]:
        token = trio.lowlevel.current_trio_token()
        for port in drop_ports(10, token):
            port.close()
        await trio.testing.wait_all_tasks_blocked()
        return weakref.ref(token)

    token = trio.run(main)
    gc.collect()
    assert token() is None
    assert len(_inbox._inboxes) == 0


@drops_entangled_ports
def test_a_port_collected_after_its_run_ended_still_closes_its_peer() -> None:
    """A port of a finished run, collected later, still disentangles its peer."""

    async def make() -> MessageChannel:
        return MessageChannel()

    channel = trio.run(make)
    survivor = channel.port2
    del channel
    gc.collect()  # port1 is collected here, after its run (trio's frames held it in a cycle)
    assert not survivor.statistics().entangled
    survivor.close()


# -- the ResourceWarning ---------------------------------------------------------------------


def resource_warnings(make_garbage: Callable[[], object]) -> list[str]:
    """The ResourceWarnings issued while ``make_garbage()`` runs, whatever the filters."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        make_garbage()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


async def test_a_port_collected_while_entangled_issues_a_resourcewarning() -> None:
    """Dropping the last reference to an entangled port warns, naming the port and the fixes."""
    channel = MessageChannel()
    survivor, name = channel.port1, channel.port2._core.id  # type: ignore[union-attr]

    def drop() -> None:
        nonlocal channel
        del channel

    [message] = resource_warnings(drop)
    assert f"MessagePort {name} was garbage-collected while entangled" in message
    assert "close()" in message
    assert "PortCollection(weak=False)" in message
    survivor.close()


async def test_a_closed_port_collected_issues_no_warning() -> None:
    """A port closed before it is dropped is collected silently."""
    channel = MessageChannel()
    channel.port1.close()
    channel.port2.close()

    def drop() -> None:
        nonlocal channel
        del channel

    assert resource_warnings(drop) == []


async def test_a_port_whose_peer_is_gone_is_collected_without_a_warning() -> None:
    """A port already disentangled (its peer closed) is collected silently."""
    channel = MessageChannel()
    channel.port1.close()
    left = channel.port2

    def drop() -> None:
        nonlocal channel, left
        del channel, left

    assert resource_warnings(drop) == []


async def test_the_warning_is_an_error_where_warnings_are_errors() -> None:
    """Under an "error" filter the warning is raised from __del__, reported as unraisable."""
    channel = MessageChannel()
    survivor = channel.port1
    reported: list[BaseException | None] = []
    hook, sys.unraisablehook = sys.unraisablehook, lambda u: reported.append(u.exc_value)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            del channel
            gc.collect()
    finally:
        sys.unraisablehook = hook
    assert [type(exc) for exc in reported] == [ResourceWarning]
    await trio.testing.wait_all_tasks_blocked()
    assert not survivor.statistics().entangled  # the peer was still told
    survivor.close()
