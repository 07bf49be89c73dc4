"""Word count: a coordinator delegates work to supervised worker actors through ports.

Each worker is an actor that owns one port and nothing else. The coordinator (the main task):

1. opens a supervisor and spawns each worker with one end of a fresh channel: ``spawn``
   transfers that port, so it becomes the worker's only way in;
2. for every line of text, asks a worker with ``actors.ask``: the job carries the text in an
   ArrayBuffer, *transferred*, so the bytes move without a copy and the coordinator can no
   longer touch them; ``ask`` adds a reply port, and the worker answers with
   ``event.reply(...)``. All the asks run at once, in a nursery;
3. merges the counts in line order;
4. closes its ends of the workers' ports: each worker's ``async for`` ends and it returns.
   The workers are ``TRANSIENT`` (restarted only after a crash), so a return stops them for
   good and the supervisor block exits.

Run it: ``python3 dev.py demo``, or, after ``python3 dev.py setup``,
``.venv/bin/python examples/word_count.py``.
"""

from __future__ import annotations

import collections
import re
from typing import Any

import trio

import actors
from actors import ArrayBuffer, MessageChannel, MessagePort, Restart

TEXT = """\
It is a truth universally acknowledged, that a single man in possession of a good fortune,
must be in want of a wife. However little known the feelings or views of such a man may be
on his first entering a neighbourhood, this truth is so well fixed in the minds of the
surrounding families, that he is considered the rightful property of some one or other of
their daughters. My dear Mr. Bennet, said his lady to him one day, have you heard that
Netherfield Park is let at last? Mr. Bennet replied that he had not. But it is, returned
she; for Mrs. Long has just been here, and she told me all about it.
"""
WORKERS = 3


# --8<-- [start:worker]
async def worker(inbox: MessagePort) -> None:
    """Count the words of every job that arrives; reply on the port ``ask`` sent with it."""
    name = actors.current_actor().name
    jobs = 0
    async for event in inbox:
        text = bytes(event.data["text"]).decode()
        counts = collections.Counter(re.findall(r"[a-z]+", text.lower()))
        event.reply({"worker": name, "counts": dict(counts)})
        jobs += 1
    print(f"{name}: inbox closed after {jobs} jobs, stopping")
    # --8<-- [end:worker]


# --8<-- [start:coordinator]
async def coordinator(workers: list[MessagePort]) -> collections.Counter[str]:
    lines = TEXT.splitlines()
    replies: dict[int, Any] = {}

    async def count(i: int, line: str) -> None:
        buffer = ArrayBuffer(line.encode())
        job = {"text": buffer}
        replies[i] = await actors.ask(workers[i % len(workers)], job, transfer=[buffer])
        assert buffer.detached  # moved, not copied: this task cannot read it any more

    async with trio.open_nursery() as nursery:  # every line is asked for at once
        for i, line in enumerate(lines):
            nursery.start_soon(count, i, line)

    totals: collections.Counter[str] = collections.Counter()
    for i in range(len(lines)):
        counts = replies[i]["counts"]
        totals.update(counts)
        print(f"  line {i} counted by {replies[i]['worker']}: {sum(counts.values())} words")
    return totals
    # --8<-- [end:coordinator]


# --8<-- [start:main]
async def main() -> None:
    async with actors.open_supervisor(name="word_count") as supervisor:
        inboxes = []
        for n in range(WORKERS):
            channel = MessageChannel()  # the worker gets port2 (spawn moves it), we keep port1
            supervisor.spawn(worker, channel.port2, name=f"worker-{n}", restart=Restart.TRANSIENT)
            inboxes.append(channel.port1)
        totals = await coordinator(inboxes)
        for inbox, handle in zip(inboxes, supervisor.children, strict=True):
            inbox.close()  # the worker sees the end of its inbox and returns,
            await handle.wait()  # so, being TRANSIENT, it is stopped for good
    print(f"{sum(totals.values())} words, {len(totals)} distinct; most common:")
    for word, count in totals.most_common(5):
        print(f"  {word:>8} {count}")
    # --8<-- [end:main]


if __name__ == "__main__":
    trio.run(main)
