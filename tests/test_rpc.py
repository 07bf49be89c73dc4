"""expose(obj, port) and wrap(port): Comlink's model of calls across a port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import pytest
import structlog.testing
import trio
import trio.testing
from _helpers import close_ports

import actors
from actors import MessageChannel, RemoteError, expose, open_supervisor, wrap


class Boom(Exception):
    """A scripted error."""


class Store:
    """An object with sync and async methods, and some that cannot be called."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.log: list[str] = []
        self.not_callable = 3

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value

    async def slow_put(self, key: str, value: Any, delay: float) -> str:
        self.log.append(f"start {key}")
        await trio.sleep(delay)
        self.data[key] = value
        self.log.append(f"end {key}")
        return key

    def fail(self, message: str) -> None:
        raise Boom(message)

    def fail_uncloneably(self) -> None:
        error = Boom("with a socket")
        error.sock = socket.socket()  # type: ignore[attr-defined]
        error.sock.close()  # type: ignore[attr-defined]
        raise error

    def _private(self) -> str:
        return "secret"


@asynccontextmanager
async def served(obj: object, concurrent: bool = False) -> AsyncIterator[actors.Proxy]:
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: expose(obj, channel.port2, concurrent=concurrent))
        yield wrap(channel.port1)
        channel.port1.close()


async def test_sync_and_async_methods_are_called_across_the_port() -> None:
    """``await proxy.method(...)`` runs the method on the exposed object."""
    store = Store()
    async with served(store) as kv:
        assert await kv.put("a", 1) is None
        assert await kv.get("a") == 1
        assert await kv.slow_put("b", 2, 0.0) == "b"
        assert store.data == {"a": 1, "b": 2}


async def test_arguments_and_results_are_clones() -> None:
    """Neither side sees the other's later changes to a value that crossed."""
    store = Store()
    async with served(store) as kv:
        value = [1, 2]
        await kv.put("list", value)
        value.append(3)
        assert store.data["list"] == [1, 2]
        got = await kv.get("list")
        got.append(4)
        assert store.data["list"] == [1, 2]


async def test_an_exception_is_raised_at_the_caller_as_itself() -> None:
    """Its type and message come back, the remote traceback is a note, and the exposed
    side keeps serving."""
    async with served(Store()) as kv:
        with pytest.raises(Boom, match="bad key") as info:
            await kv.fail("bad key")
        notes = getattr(info.value, "__notes__", [])
        assert any("raised by the exposed side" in note and "fail" in note for note in notes)
        assert await kv.get("missing") is None


async def test_an_exception_that_cannot_be_cloned_is_a_remote_error() -> None:
    """``RemoteError`` carries the type name, the message and the remote traceback."""
    async with served(Store()) as kv:
        with pytest.raises(RemoteError) as info:
            await kv.fail_uncloneably()
    error = info.value
    assert error.type_name == "test_rpc.Boom"
    assert error.message == "with a socket"
    assert "fail_uncloneably" in error.traceback


@pytest.mark.parametrize("name", ["missing", "not_callable"])
async def test_only_methods_can_be_called(name: str) -> None:
    """A name the object lacks, or an attribute that is not a method: ``AttributeError`` at
    the caller, and the exposed side serves on."""
    async with served(Store()) as kv:
        with pytest.raises(AttributeError):
            await getattr(kv, name)()
        assert await kv.get("x") is None


async def test_private_names_are_neither_forwarded_nor_served() -> None:
    """A name starting with ``_`` is not a remote method of the proxy, and a call for one
    that reaches the exposed side anyway is refused there."""
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(expose, Store(), channel.port2)
        with pytest.raises(AttributeError):
            wrap(channel.port1)._private
        kind, error, _ = await actors.ask(channel.port1, ("_private", (), {}))
        assert kind == "raise"
        assert isinstance(error, AttributeError)
        channel.port1.close()


async def test_a_result_that_cannot_be_cloned_is_an_error_at_the_caller() -> None:
    """The caller gets the ``DataCloneError``; the exposed side serves on."""

    class Leaky:
        def handle(self) -> object:
            return lambda: None

        def ping(self) -> str:
            return "pong"

    async with served(Leaky()) as leaky:
        with pytest.raises(actors.DataCloneError):
            await leaky.handle()
        assert await leaky.ping() == "pong"


async def test_an_exposed_function_is_called_through_the_proxy_itself() -> None:
    """``await proxy(*args)`` calls an exposed function."""

    def double(x: int) -> int:
        return 2 * x

    async with served(double) as fn:
        assert await fn(21) == 42


async def test_transfer_moves_ports_in_arguments_and_results() -> None:
    """``transfer(value, [port])`` moves the port; without it a port is a DataCloneError."""

    class Hub:
        def __init__(self) -> None:
            self.port: actors.MessagePort | None = None

        def attach(self, port: actors.MessagePort) -> None:
            self.port = port
            port.post_message("attached")

        def fresh(self) -> actors.MessagePort:
            channel = MessageChannel()
            channel.port2.post_message("from the fresh channel")
            self.keep = channel.port2
            return actors.transfer(channel.port1, [channel.port1])

    hub = Hub()
    async with served(hub) as proxy:
        line = MessageChannel()
        with pytest.raises(actors.DataCloneError):
            await proxy.attach(line.port2)
        assert not line.port2.statistics().transferred  # nothing moved
        await proxy.attach(actors.transfer(line.port2, [line.port2]))
        assert line.port2.statistics().transferred
        assert (await line.port1.receive()).data == "attached"
        port = await proxy.fresh()
        assert (await port.receive()).data == "from the fresh channel"
        close_ports(line, port, hub.keep, hub.port)


async def test_a_callback_passed_by_reference_is_called_back() -> None:
    """``proxy(fn)`` travels as a port: the exposed side calls it, sync or async, and it
    runs here."""
    calls: list[tuple[str, object]] = []

    class Notifier:
        async def notify(self, callback: Any, value: object) -> object:
            return await callback(value)

    def sync_callback(value: object) -> str:
        calls.append(("sync", value))
        return f"sync saw {value}"

    async def async_callback(value: object) -> str:
        await trio.lowlevel.checkpoint()
        calls.append(("async", value))
        return f"async saw {value}"

    async with served(Notifier()) as notifier:
        assert await notifier.notify(actors.proxy(sync_callback), 1) == "sync saw 1"
        assert await notifier.notify(actors.proxy(async_callback), 2) == "async saw 2"
    assert calls == [("sync", 1), ("async", 2)]


async def test_an_object_passed_by_reference_has_its_methods_called() -> None:
    """``proxy(obj)``: the other side calls its methods."""
    local = Store()

    class Copier:
        async def copy(self, source: Any, key: str) -> None:
            local.put(key, await source.get(key))

    remote_source = Store()
    remote_source.put("k", "v")
    async with served(Copier()) as copier:
        await copier.copy(actors.proxy(remote_source), "k")
    assert local.data == {"k": "v"}


async def test_one_call_at_a_time_by_default(autojump_clock: Any) -> None:
    """``concurrent=False``: calls run one at a time, in the order they came."""
    store = Store()
    async with served(store) as kv, trio.open_nursery() as nursery:
        nursery.start_soon(kv.slow_put, "a", 1, 2.0)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(kv.slow_put, "b", 2, 1.0)
    assert store.log == ["start a", "end a", "start b", "end b"]


async def test_concurrent_calls_run_at_once(autojump_clock: Any) -> None:
    """``concurrent=True``: each call runs as soon as it comes."""
    store = Store()
    async with served(store, concurrent=True) as kv, trio.open_nursery() as nursery:
        nursery.start_soon(kv.slow_put, "a", 1, 2.0)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(kv.slow_put, "b", 2, 1.0)
    assert store.log == ["start a", "start b", "end b", "end a"]


async def test_a_closed_service_fails_every_pending_call(autojump_clock: Any) -> None:
    """The call running and the calls queued behind it all fail with
    ``BrokenResourceError`` when the exposed side stops."""
    channel = MessageChannel()
    kv = wrap(channel.port1)
    failures: list[BaseException] = []

    async def call(key: str) -> None:
        try:
            await kv.slow_put(key, 0, 100.0)
        except trio.BrokenResourceError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        serving = trio.CancelScope()

        async def serve_for_a_while() -> None:
            with serving:
                await expose(Store(), channel.port2)
            channel.port2.close()

        nursery.start_soon(serve_for_a_while)
        for key in "abc":
            nursery.start_soon(call, key)
        await trio.sleep(1)
        serving.cancel()
    assert len(failures) == 3


async def test_a_call_in_flight_fails_when_the_service_crashes() -> None:
    """A service actor that crashes mid-call: the call gets ``BrokenResourceError``, and a
    client can reconnect to the restarted service by name."""
    started = trio.Event()

    class Fragile:
        async def work(self) -> None:
            started.set()
            await trio.sleep_forever()

        def hello(self) -> str:
            return f"hello from {actors.current_actor().incarnation}"

    async def service() -> None:
        async with actors.serve("fragile") as incoming:
            await incoming.expose(Fragile(), concurrent=True)

    with structlog.testing.capture_logs():
        async with open_supervisor() as sup:
            handle = sup.spawn(service)
            proxy = wrap(await actors.connect("fragile", wait=True))
            async with trio.open_nursery() as nursery:
                failures: list[BaseException] = []

                async def work() -> None:
                    try:
                        await proxy.work()
                    except trio.BrokenResourceError as exc:
                        failures.append(exc)

                nursery.start_soon(work)
                await started.wait()
                handle._incarnation.crash(Boom("the service crashed"))  # type: ignore[union-attr]
            assert len(failures) == 1
            proxy = wrap(await actors.connect("fragile", wait=True))
            assert await proxy.hello() == "hello from 2"
            sup.cancel()


async def test_cancelling_a_call_cancels_the_method_on_the_exposed_side() -> None:
    """The caller gives up: the callee sees the reply port close, and its method is
    cancelled."""
    cancelled = trio.Event()
    running = trio.Event()

    class Slow:
        async def forever(self) -> None:
            running.set()
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                cancelled.set()
                raise

        def ping(self) -> str:
            return "pong"

    async with served(Slow()) as slow:
        with trio.move_on_after(5) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow.forever)
                await running.wait()
                nursery.cancel_scope.cancel()
        assert not scope.cancelled_caught
        with trio.fail_after(1):
            await cancelled.wait()
        assert await slow.ping() == "pong"  # and it serves on


async def test_expose_returns_when_the_peer_closes() -> None:
    """``expose`` serves until the caller's end closes, then returns."""
    channel = MessageChannel()
    done: list[bool] = []

    async def serving() -> None:
        await expose(Store(), channel.port2)
        done.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serving)
        assert await wrap(channel.port1).get("x") is None
        channel.port1.close()
    assert done == [True]


async def test_an_argument_that_cannot_be_cloned_sends_nothing() -> None:
    """A ``DataCloneError`` for an argument: raised at the caller, nothing sent."""
    store = Store()
    async with served(store) as kv:
        with pytest.raises(actors.DataCloneError):
            await kv.put("fn", lambda: None)
        assert store.data == {}


async def test_incoming_expose_serves_every_client_one_call_at_a_time(
    autojump_clock: Any,
) -> None:
    """``Incoming.expose(obj)``: every client of the name calls the one object, and calls
    from different clients still run one at a time (OTP's gen_server)."""
    store = Store()

    async def service() -> None:
        async with actors.serve("kv") as incoming:
            await incoming.expose(store)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(service)
        first = wrap(await actors.connect("kv", wait=True))
        second = wrap(await actors.connect("kv"))
        async with trio.open_nursery() as calls:
            calls.start_soon(first.slow_put, "a", 1, 2.0)
            await trio.testing.wait_all_tasks_blocked()
            calls.start_soon(second.slow_put, "b", 2, 1.0)
        nursery.cancel_scope.cancel()
    assert store.log == ["start a", "end a", "start b", "end b"]


class KV(Protocol):
    async def get(self, key: str) -> int | None: ...


async def test_wrap_with_a_protocol_is_the_same_proxy() -> None:
    """``wrap(port, KV)`` only informs type checkers: the proxy works the same."""
    store = Store()
    store.put("n", 7)
    channel = MessageChannel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(expose, store, channel.port2)
        kv = wrap(channel.port1, KV)
        assert await kv.get("n") == 7
        channel.port1.close()


def test_wrap_refuses_what_is_not_a_port() -> None:
    """A clear ``TypeError`` for a wrong argument."""
    with pytest.raises(TypeError, match="MessagePort"):
        wrap(object())  # type: ignore[call-overload]


async def test_a_held_request_is_reported_not_hung(
    autojump_clock: Any, logs: list[dict[str, Any]]
) -> None:
    """An exposed method that never returns: the call is reported after ``warn_after``
    seconds as ``ask_unanswered``, and the caller's own deadline ends it."""

    class Stuck:
        async def wait(self) -> None:
            await trio.sleep_forever()

    async with served(Stuck()) as stuck:
        with trio.move_on_after(8):
            await stuck.wait()
    [warning] = [e for e in logs if e["event"] == "ask_unanswered"]
    assert warning["waited"] == pytest.approx(5.0)
    assert "event.reply()" in warning["hint"]
