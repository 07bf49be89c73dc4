"""Hosts for `test_process_properties.py`: processes that hold ends of channels and do with
them what the test says.

A test spreads the ends of its channels over the parent and a few process actors, each with a
`Holder`. The parent's holder runs in the test's own trio run; each process actor runs `host`,
whose holder executes the commands it receives on its control port, in order. The ends are
numbered: end `k` is side `k % 2` of channel `k // 2`. An end moves from holder to holder
through *carriers*, channels between every two holders (and from each holder to itself), as a
message of `(k, hop)` pairs whose transfer list is the ends; `hop` counts their moves, so that
what an end received at each stop of its journey can be put back in order.

Each holder records what its ends receive, in the order they receive it (across its ends: the
order of arrival in that process): `(k, hop, seq)` for the message `("m", sender, seq)`,
`(k, hop, "end")` for `trio.EndOfChannel`, `(k, hop, "stray", data)` for anything else. A
command that must wait (for an end still in flight, for messages still coming) waits at most
`PATIENCE` seconds, then records an error; errors and records go to the test with `report`.
"""

from __future__ import annotations

import datetime
import os
import traceback
from collections.abc import Callable
from typing import Any

import trio

from actors import DataCloneError, MessageChannel, MessageEvent, MessagePort
from actors._wire.node import local_node

PATIENCE = float(os.environ.get("ACTORS_PROCESS_PATIENCE", "20"))
"""Seconds a command waits for an end to land or for a message to come, before it fails."""

Command = tuple[Any, ...]


class OddZone(datetime.tzinfo):
    """A tzinfo that structured clone copies in-process but the wire cannot carry."""

    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(hours=1)

    def dst(self, dt: datetime.datetime | None) -> None:
        return None

    def tzname(self, dt: datetime.datetime | None) -> str:
        return "odd"


def peer(k: int) -> int:
    return k ^ 1


class Holder:
    """One process's ends of the channels under test, and what they received."""

    def __init__(self, me: int, nursery: trio.Nursery) -> None:
        self.me = me
        self.nursery = nursery
        self.ports: dict[int, MessagePort] = {}  # the ends held here
        self.hops: dict[int, int] = {}  # how many times each end held here has moved
        self.listeners: dict[int, tuple[str, Callable[[MessageEvent], None]]] = {}
        self.stale: list[tuple[int, MessagePort]] = []  # ends sent away: dead objects here
        self.got: list[tuple[Any, ...]] = []
        self.errors: list[str] = []
        self.out: dict[int, MessagePort] = {}  # the carrier to each holder
        self.carriers: list[MessagePort] = []  # every carrier port held here
        self.arrived = trio.Event()  # set (and replaced) each time an end lands here
        self.streams = 0  # stream tasks still posting

    # -- ends arriving ------------------------------------------------------------------

    async def land_from(self, carrier: MessagePort) -> None:
        """Take the ends that come through `carrier` (a task, for as long as it is open)."""
        async for event in carrier:
            for (k, hop), port in zip(event.data, event.ports, strict=True):
                if k in self.ports:
                    self.errors.append(f"end {k} landed at {self.me}, where it already was")
                self.ports[k] = port
                self.hops[k] = hop
            self.arrived.set()
            self.arrived = trio.Event()

    async def need(self, k: int) -> MessagePort:
        """End `k`, once it is here."""
        with trio.move_on_after(PATIENCE):
            while k not in self.ports:
                await self.arrived.wait()
            return self.ports[k]
        raise AssertionError(f"end {k} never came to holder {self.me}")

    # -- recording ----------------------------------------------------------------------

    def record(self, k: int, data: Any) -> None:
        hop = self.hops[k]
        if type(data) is tuple and len(data) == 3 and data[0] == "m" and data[1] == peer(k):
            self.got.append((k, hop, data[2]))
        else:
            self.got.append((k, hop, "stray", repr(data)))

    def recorder(self, k: int) -> Callable[[MessageEvent], None]:
        hop = self.hops[k]

        def handler(event: MessageEvent) -> None:
            data = event.data
            if type(data) is tuple and len(data) == 3 and data[0] == "m" and data[1] == peer(k):
                self.got.append((k, hop, data[2]))
            else:
                self.got.append((k, hop, "stray", repr(data)))

        return handler

    def unlisten(self, k: int) -> None:
        port = self.ports[k]
        how, handler = self.listeners.pop(k, ("", None))
        if how == "onmessage":
            port.onmessage = None
        elif how == "listener" and handler is not None:
            port.remove_event_listener("message", handler)

    async def drain(self, k: int) -> None:
        """Receive what is queued at `k` now (unless its handlers take it)."""
        port = await self.need(k)
        if k in self.listeners:
            return
        while port.statistics().queued:
            self.record(k, (await port.receive()).data)

    async def finish(self, k: int, until: int | None) -> None:
        """Take the handlers off `k` and receive until the message `until` has come, or (if
        `None`) until `trio.EndOfChannel`."""
        port = await self.need(k)
        self.unlisten(k)
        if until is not None and (k, self.hops[k], until) in self.got:
            return  # a handler took it
        with trio.move_on_after(PATIENCE) as waiting:
            while True:
                try:
                    event = await port.receive()
                except trio.EndOfChannel:
                    self.got.append((k, self.hops[k], "end"))
                    if until is not None:
                        self.errors.append(f"end {k} ended before {until} came")
                    return
                self.record(k, event.data)
                if until is not None and event.data == ("m", peer(k), until):
                    return
        if waiting.cancelled_caught:
            got = [g[2:] for g in self.got if g[0] == k]
            what = "its close" if until is None else until
            raise AssertionError(f"end {k} at holder {self.me} waits for {what}; it got {got}")

    # -- commands -----------------------------------------------------------------------

    async def execute(self, command: Command, ports: tuple[MessagePort, ...]) -> Any:
        """Do what `command` says; return the reply (`None`: no reply)."""
        try:
            return await self._execute(command, ports)
        except Exception as exc:
            self.errors.append(
                f"holder {self.me}, {command!r}: "
                + "".join(traceback.format_exception_only(type(exc), exc)).strip()
            )
            return None

    async def _execute(self, command: Command, ports: tuple[MessagePort, ...]) -> Any:
        op = command[0]
        if op == "post":
            _, k, seqs = command
            port = await self.need(k)
            for seq in seqs:
                port.post_message(("m", k, seq))
        elif op == "transfer":  # ends `ks`, in one message
            _, ks, to = command
            moving = [await self.need(k) for k in ks]
            for k in ks:
                self.unlisten(k)
                del self.ports[k]
            self.out[to].post_message(tuple((k, self.hops.pop(k) + 1) for k in ks), moving)
            self.stale += zip(ks, moving, strict=True)
        elif op == "relay":  # drain, then pass on: one stop of a journey
            _, k, to = command
            await self.drain(k)
            await self._execute(("transfer", [k], to), ())
        elif op == "close":
            port = await self.need(command[1])
            del self.ports[command[1]]
            self.listeners.pop(command[1], None)
            port.close()
        elif op == "start":
            (await self.need(command[1])).start()
        elif op == "listen":
            _, k, how = command
            port = await self.need(k)
            if k not in self.listeners:
                handler = self.recorder(k)
                self.listeners[k] = (how, handler)
                if how == "onmessage":
                    port.onmessage = handler
                else:  # does not start the queue (D1)
                    port.add_event_listener("message", handler)
        elif op == "unlisten":
            await self.need(command[1])
            self.unlisten(command[1])
        elif op == "drain":
            await self.drain(command[1])
        elif op == "finish":
            await self.finish(command[1], command[2])
        elif op == "stale_post":
            for k, old in self.stale:
                if k == command[1]:
                    old.post_message(("stale", k, -1))
        elif op == "bad_post":
            await self.bad_post(*command[1:])
            return ("bad_post",)
        elif op == "stream":
            _, k, seqs, close = command
            port = await self.need(k)
            del self.ports[k]
            self.streams += 1
            self.nursery.start_soon(self.stream, k, port, seqs, close)
        elif op == "make":
            channel = MessageChannel()
            c = command[1]
            self.ports[2 * c], self.ports[2 * c + 1] = channel.port1, channel.port2
            self.hops[2 * c] = self.hops[2 * c + 1] = 0
        elif op == "carrier_out":
            self.out[command[1]] = ports[0]
            self.carriers.append(ports[0])
        elif op == "carrier_in":
            self.carriers.append(ports[0])
            self.nursery.start_soon(self.land_from, ports[0])
        elif op == "report":
            got, errors = self.got, self.errors
            self.got, self.errors, self.stale = [], [], []
            return ("report", got, errors, sorted(self.ports))
        elif op == "sync":
            node = local_node()
            forwards = [(key, f.to, f.peer_location) for key, f in node.forwards.items()]
            return ("sync", len(node.forwards), len(node.ends), self.streams, node.name, forwards)
        elif op == "reset":  # after a failed example: start again from nothing
            for port in self.ports.values():
                port.close()
            self.ports.clear()
            self.hops.clear()
            self.listeners.clear()
            self.got, self.errors, self.stale = [], [], []
            return ("reset",)
        else:
            raise ValueError(f"no such command: {op!r}")
        return None

    async def bad_post(self, k: int, m: int, wire: bool) -> None:
        """A post on `k` that must fail, transferring end `m`: `m` must stay here, whole (D3).
        `wire`: a message clone copies but the wire cannot carry (for a peer elsewhere)."""
        port, other = await self.need(k), await self.need(m)
        message: object = (
            ("m", k, datetime.datetime(2020, 1, 1, tzinfo=OddZone())) if wire else (lambda: k)
        )
        try:
            port.post_message(message, [other])
        except DataCloneError:
            pass
        else:
            self.errors.append(f"bad post on {k} (wire={wire}) was not refused")
        stats = other.statistics()
        if stats.transferred or stats.closed:
            self.errors.append(f"a refused post on {k} (wire={wire}) detached end {m}")

    async def stream(self, k: int, port: MessagePort, seqs: list[int], close: bool) -> None:
        """Post `seqs` on `k`, one per scheduling round, then close it (or keep it here)."""
        try:
            for seq in seqs:
                port.post_message(("m", k, seq))
                await trio.lowlevel.checkpoint()
        finally:
            self.streams -= 1
            if close:
                port.close()
            else:
                self.ports[k] = port

    def close_all(self) -> None:
        for port in (*self.ports.values(), *self.carriers):
            port.close()


async def host(control: MessagePort, me: int) -> None:
    """A process actor that holds ends for the test: it does what `control` says, in order,
    and answers there when a command has an answer, until `control` closes."""
    async with trio.open_nursery() as nursery:
        holder = Holder(me, nursery)
        async for event in control:
            reply = await holder.execute(event.data, event.ports)
            if reply is not None:
                control.post_message(reply)
        nursery.cancel_scope.cancel()
    holder.close_all()
