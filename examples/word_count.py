"""Word count: a coordinator delegates work to worker tasks by transferring ports.

Each worker is a trio task that owns one port and nothing else. The coordinator:

1. makes a channel per worker and hands the worker one end (the worker's only way in);
2. for every chunk of text, makes a fresh reply channel, and posts the job with the text
   in an ArrayBuffer and the reply port, both *transferred*: the bytes move without a copy
   and the coordinator can no longer touch either;
3. collects the counts from the reply ports and merges them;
4. closes the workers' ports: each worker's `async for` ends, and the worker returns.

Run it: ``python3 dev.py demo`` (or ``python examples/word_count.py``).
"""

from __future__ import annotations

import collections
import re

import trio

from actors import ArrayBuffer, MessageChannel, MessagePort

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


async def worker(name: str, inbox: MessagePort) -> None:
    """Count the words of every job that arrives; reply on the port the job carries."""
    jobs = 0
    async for event in inbox:
        text = bytes(event.data["text"]).decode()
        counts = collections.Counter(re.findall(r"[a-z]+", text.lower()))
        reply = event.ports[0]  # the only port transferred with a job
        reply.post_message({"worker": name, "counts": dict(counts)})
        reply.close()
        jobs += 1
    print(f"{name}: inbox closed after {jobs} jobs, stopping")


async def coordinator(workers: list[MessagePort]) -> collections.Counter[str]:
    totals: collections.Counter[str] = collections.Counter()
    replies: list[MessagePort] = []
    for i, line in enumerate(TEXT.splitlines()):
        buffer = ArrayBuffer(line.encode())
        reply = MessageChannel()
        job = {"text": buffer, "line": i}
        workers[i % len(workers)].post_message(job, transfer=[buffer, reply.port2])
        assert buffer.detached  # moved, not copied: this task cannot read it any more
        replies.append(reply.port1)
    for port in replies:
        result = await port.receive()
        counts = result.data["counts"]
        totals.update(counts)
        print(f"  line counted by {result.data['worker']}: {sum(counts.values())} words")
    return totals


async def main() -> None:
    async with trio.open_nursery() as nursery:
        outboxes = []
        for n in range(WORKERS):
            channel = MessageChannel()
            nursery.start_soon(worker, f"worker-{n}", channel.port2)
            outboxes.append(channel.port1)
        totals = await coordinator(outboxes)
        for port in outboxes:
            port.close()  # each worker sees the end of its inbox
    print(f"{sum(totals.values())} words, {len(totals)} distinct; most common:")
    for word, count in totals.most_common(5):
        print(f"  {word:>8} {count}")


if __name__ == "__main__":
    trio.run(main)
