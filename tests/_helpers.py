"""Small helpers shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable

import trio
import trio.testing

from actors import MessageEvent, MessagePort


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
