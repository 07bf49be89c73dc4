"""Small helpers shared by the test modules."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import trio
import trio.testing

from actors import MessageChannel, MessageEvent, MessagePort

drops_entangled_ports = pytest.mark.filterwarnings(
    "ignore:MessagePort .* was garbage-collected while entangled:ResourceWarning"
)
"""For tests about garbage collection: they drop entangled ports on purpose, so the
ResourceWarning that would be an error under the suite's filters is expected there."""


async def blocked_receivers(
    port: MessagePort, trigger: Callable[[], object], count: int = 1
) -> list[MessageEvent | BaseException]:
    """Block ``count`` tasks in ``port.receive()``, call ``trigger()``, return what each got."""
    results: list[MessageEvent | BaseException] = []

    async def receiver() -> None:
        try:
            results.append(await port.receive())
        except Exception as exc:
            results.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        trigger()
    return results


ROOT = Path(__file__).resolve().parent.parent


def checkout_env() -> dict[str, str]:
    """The environment for a script run as a subprocess, with this checkout first on the path.

    A script's own folder comes first on ``sys.path``, not the working directory, so without
    this a script would import whatever ``actors`` is installed rather than the code under test.
    """
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) if not path else f"{ROOT}{os.pathsep}{path}"}


def close_ports(*things: object) -> None:
    """Close every port given: ports, both ports of channels, and iterables of either.

    Tests close what they make, so that no entangled port is left for the garbage collector
    (which would issue a ResourceWarning, an error under the suite's filters).
    """
    for thing in things:
        if isinstance(thing, MessagePort):
            thing.close()
        elif isinstance(thing, MessageChannel):
            thing.port1.close()
            thing.port2.close()
        elif isinstance(thing, Iterable):
            close_ports(*thing)


def child_pids() -> list[int]:
    """The pids of this process's children (started by any of its threads), zombies included."""
    pids: list[int] = []
    for path in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            pids.extend(int(pid) for pid in path.read_text().split())
    return pids
