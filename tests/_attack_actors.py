"""Process actors for tests/test_attack_links.py (a child imports them by name)."""

from __future__ import annotations

import os

import trio
import trio.testing

from actors import MessagePort
from actors._process.link import IN_A_ROW


async def posts_after_a_wait_then_exits(port: MessagePort) -> None:
    """Post more than IN_A_ROW messages (the link's writer takes over, and then runs) and
    wait for an answer; post one message and wait until the process has nothing else to run;
    then post IN_A_ROW messages and end the process at once (`os._exit`)."""
    for i in range(IN_A_ROW + 1):
        port.post_message(("sync", i))
    await port.receive()  # the parent read them all: the writer has run, with nothing left
    port.post_message(("alone", 0))
    await trio.testing.wait_all_tasks_blocked()  # a wait (nothing else to run): the writer runs
    for i in range(IN_A_ROW):
        port.post_message(("burst", i))
    os._exit(3)
