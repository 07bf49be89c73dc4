"""Checked by `mypy --strict` in CI (not collected by pytest): what type checkers see.

A failing `assert_type` is a type error, so a change that loses a public type fails the lint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, assert_type

import actors


class KV(Protocol):
    async def get(self, key: str) -> int | None: ...


async def wrap_is_typed_by_its_protocol(port: actors.MessagePort) -> None:
    kv = actors.wrap(port, KV)
    assert_type(kv, KV)
    assert_type(await kv.get("a"), int | None)
    assert_type(actors.wrap(port), Any)


async def connect_returns_a_port() -> None:
    assert_type(await actors.connect("kv"), actors.MessagePort)
    async with actors.serve("kv") as incoming:
        assert_type(incoming, actors.Incoming)
        async for port in incoming:
            assert_type(port, actors.MessagePort)


def markers_keep_the_type_of_what_they_mark(port: actors.MessagePort) -> None:
    callback: Callable[[int], str] = str

    assert_type(actors.transfer(port, [port]), actors.MessagePort)
    assert_type(actors.proxy(callback), Callable[[int], str])


async def spawn_checks_arguments(sup: actors.Supervisor, port: actors.MessagePort) -> None:
    async def worker(inbox: actors.MessagePort, n: int) -> None: ...

    assert_type(sup.spawn(worker, port, 3, shutdown=None), actors.ActorHandle)
