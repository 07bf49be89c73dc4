"""A property test of receiving from a process actor: random programs of posts, receiving
tasks (several at a port, some roving over the ports, some in a conversation, some with a
deadline), cancellations, `receive_nowait()` drains, handlers (plain or async) set and
removed while tasks wait, and closes, against a real child process that echoes three ports
(two its own from its start, one moved into it afterwards).

A `receive()` blocked at one of these ports may read the process link itself
(`actors._process.link.read_for`), lend it on, be woken for the head of its queue or by a
handler; the child echoes what queued behind a message in a row, so echoes come back in
USERS frames. Whatever happens, per port: every echo is received exactly once (by a task,
a handler, or the parent's own receives), a closed port got a prefix; the port returns its
messages in order (to whichever task or handler; one message is in hand at a time), so each
receiver's own come in order; nothing hangs, and no child process is left.

`ACTORS_FUZZ_EXAMPLES=300` runs a longer search (the default, 25, takes ~6 s).
"""

from __future__ import annotations

import math
import os

import pytest
import trio
import trio.testing
from _fuzz_actors import echo_bursts
from _helpers import close_ports
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import MessageChannel, MessageEvent, MessagePort, Restart, open_supervisor

EXAMPLES = int(os.environ.get("ACTORS_FUZZ_EXAMPLES", "25"))
PORTS = 3
ARRIVAL_SECONDS = 10  # for the echoes of what was posted to be back

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="Linux child processes")

Step = tuple[str, int, int]  # (what, port or task, count or how)
KINDS = ["post"] * 4 + ["receive"] * 4 + ["cancel"] * 2
KINDS += ["drain", "handler", "pause", "arrive", "close"]
steps = st.tuples(st.sampled_from(KINDS), st.integers(0, 7), st.integers(1, 40))


class Receiving:
    """A task receiving `wanted` messages, in a cancel scope of its own: at port `k`, or at
    each port in turn (`roving`); in a conversation (`talks`), it posts one message on the
    port before each receive."""

    def __init__(self, program: Program, k: int, wanted: int, how: str) -> None:
        self.program, self.k, self.wanted, self.how = program, k, wanted, how
        self.got: list[tuple[int, int]] = []  # (port, message)
        self.scope = trio.CancelScope()
        self.outcome = "running"

    async def run(self) -> None:
        ports = self.program.ports
        with self.scope:
            try:
                for i in range(self.wanted):
                    k = (self.k + i) % PORTS if self.how == "roving" else self.k
                    if self.how == "talks":
                        self.program.post(k, 1)
                    data = (await ports[k].receive()).data
                    self.got.append((k, data))
                    self.program.took(k, data)
            except trio.BusyResourceError:
                self.outcome = "busy"
                return
            except trio.ClosedResourceError:
                self.outcome = "closed"
                return
            self.outcome = "done"
            return
        self.outcome = "cancelled"

    def at(self, k: int) -> list[int]:
        return [m for j, m in self.got if j == k]


class Program:
    """The parent's side of one example: what it posted and who received what."""

    def __init__(self, ports: list[MessagePort], nursery: trio.Nursery) -> None:
        self.ports, self.nursery = ports, nursery
        self.posted = [0] * PORTS  # port k's messages are 0, 1, ... posted[k] - 1
        self.tasks: list[Receiving] = []
        self.by_main: list[list[int]] = [[] for _ in range(PORTS)]  # drains, final receives
        self.by_handlers: list[list[list[int]]] = [[] for _ in range(PORTS)]
        self.closed: set[int] = set()  # ports the program closed
        self.taken: list[list[int]] = [[] for _ in range(PORTS)]  # by anyone, as returned
        self.arriving: dict[int, trio.CancelScope] = {}  # `arrive(k)` receives in it

    def accounted(self, k: int) -> int:
        """Port k's messages received so far, or queued there."""
        core = self.ports[k]._core
        assert core is not None
        received = sum(len(t.at(k)) for t in self.tasks)
        received += len(self.by_main[k]) + sum(len(got) for got in self.by_handlers[k])
        return received + core.messages()

    def took(self, k: int, data: int) -> None:
        """Someone received `data` at port k (just now: the order of these is the port's)."""
        self.taken[k].append(data)
        scope = self.arriving.get(k)
        if scope is not None and self.accounted(k) >= self.posted[k]:
            scope.cancel()

    async def arrive(self, k: int) -> None:
        """Receive at port k, with the tasks there, until every echo of what was posted on
        it is back (received, or queued): only their count is looked at here; `check` says
        which they were. A task that takes the last one cancels this receive."""
        with trio.fail_after(ARRIVAL_SECONDS), trio.CancelScope() as scope:
            self.arriving[k] = scope
            while self.accounted(k) < self.posted[k]:
                data = (await self.ports[k].receive()).data
                self.by_main[k].append(data)
                self.took(k, data)
        del self.arriving[k]

    async def step(self, what: str, a: int, n: int) -> None:
        k = a % PORTS
        port = self.ports[k]
        if k in self.closed and what not in ("cancel", "pause"):
            return
        if what == "post":
            self.post(k, n)
        elif what == "receive":
            how = ("plain", "plain", "roving", "talks", "deadline")[n % 5]
            task = Receiving(self, k, n, how)
            if how == "deadline":  # cancelled at a point the program does not choose
                task.scope.deadline = trio.current_time() + 0.0005 * (a + n % 3)
            self.tasks.append(task)
            self.nursery.start_soon(task.run)
        elif what == "cancel":
            if self.tasks:
                task = self.tasks[a % len(self.tasks)]
                await self.pause(n)
                task.scope.cancel()
        elif what == "drain":
            self.drain(k)
        elif what == "handler":
            got: list[int] = []
            self.by_handlers[k].append(got)

            def handler(event: MessageEvent) -> None:
                got.append(event.data)
                self.took(k, event.data)

            async def async_handler(event: MessageEvent) -> None:
                got.append(event.data)
                self.took(k, event.data)
                await trio.lowlevel.checkpoint()  # the port is busy until it returns

            # tasks waiting at the port get BusyResourceError
            port.onmessage = async_handler if n % 2 else handler
            await self.pause(n)
            port.onmessage = None
        elif what == "pause":
            await self.pause(n)
        elif what == "arrive":
            await self.arrive(k)
        elif what == "close":  # tasks waiting at it get ClosedResourceError
            await self.pause(n)
            port.close()
            self.closed.add(k)

    def post(self, k: int, n: int) -> None:
        if k in self.closed:
            return
        for _ in range(n):
            self.ports[k].post_message(self.posted[k])
            self.posted[k] += 1

    async def pause(self, how: int) -> None:
        if how % 3 == 1:
            await trio.lowlevel.checkpoint()
        elif how % 3 == 2:
            await trio.testing.wait_all_tasks_blocked()

    def drain(self, k: int) -> None:
        while True:
            try:
                data = self.ports[k].receive_nowait().data
                self.by_main[k].append(data)
                self.took(k, data)
            except trio.WouldBlock:
                return

    async def finish(self) -> None:
        """Cancel the tasks still receiving, then receive what is left of every port."""
        await trio.testing.wait_all_tasks_blocked()
        for task in self.tasks:
            task.scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        for k, port in enumerate(self.ports):
            if k in self.closed:
                continue
            with trio.fail_after(ARRIVAL_SECONDS):
                while self.accounted(k) < self.posted[k]:
                    data = (await port.receive()).data
                    self.by_main[k].append(data)
                    self.took(k, data)
            self.drain(k)  # nothing more, or something came twice

    def check(self) -> None:
        for k in range(PORTS):
            sequences = {"main": self.by_main[k]}
            for i, task in enumerate(self.tasks):
                sequences[f"task {i} ({task.how}, {task.outcome})"] = task.at(k)
            for i, got in enumerate(self.by_handlers[k]):
                sequences[f"handler {i}"] = got
            for who, got in sequences.items():
                assert got == sorted(got), f"port {k}: {who} got {got} out of order"
                if who.startswith("task"):
                    assert "running" not in who, f"port {k}: {who} never ended"
            taken = self.taken[k]  # one message in hand at a time: the port's order
            assert taken == sorted(taken), f"port {k}: returned out of order: {taken}"
            every = sorted(m for got in sequences.values() for m in got)
            expected = list(range(len(every) if k in self.closed else self.posted[k]))
            assert every == expected, (
                f"port {k}: posted 0..{self.posted[k] - 1}, received {every}: {sequences}"
            )


async def play(program: list[Step]) -> None:
    """Port 0 and port 1 are the process actor's from its start; port 2's peer moves into
    it afterwards (its messages come by another way: a remote end, not a slot's)."""
    control = MessageChannel()
    channels = [MessageChannel() for _ in range(PORTS)]
    ports = [channel.port1 for channel in channels]
    with trio.fail_after(3 * ARRIVAL_SECONDS + 5):
        async with open_supervisor() as sup:
            sup.spawn(
                echo_bursts,
                control.port2,
                *(c.port2 for c in channels[:-1]),
                process=True,
                restart=Restart.TEMPORARY,
            )
            control.port1.post_message("echo it", [channels[-1].port2])
            async with trio.open_nursery() as nursery:
                run = Program(ports, nursery)
                for what, a, n in program:
                    await run.step(what, a, n)
                await run.finish()
            run.check()
            sup.cancel()
    close_ports(control, *channels)


HANG_SECONDS = 60 + math.ceil(EXAMPLES * 1.5)  # conftest's alarm, scaled to the search


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(program=st.lists(steps, min_size=1, max_size=16))
def test_receivers_at_ports_of_a_process_get_every_echo_once_in_order(program: list[Step]) -> None:
    """Posts, receiving tasks (several at a port), cancellations, drains, handlers set and
    removed while tasks wait: every echo is received once, each receiver's in order."""
    trio.run(play, program)
