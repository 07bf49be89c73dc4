"""How a process actor's life ends, for each way it can end: the rule, and a test of it.

Real OS processes. Every test learns what happened in a child from messages (never from
sleeps), under the suite's watchdog; the suite's no-zombie fixture checks after each one that
no child process is left.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Any

import _process_actors as A
import pytest
import trio
from _helpers import ROOT, checkout_env, child_pids, close_ports

from actors import (
    ActorState,
    MessageChannel,
    MessagePort,
    ProcessDiedError,
    RemoteError,
    Restart,
    TooManyRestartsError,
    open_supervisor,
)


async def data(port: MessagePort) -> Any:
    """The data of the next message at `port`."""
    return (await port.receive()).data


async def rest(port: MessagePort) -> list[Any]:
    """The data of every message left at `port`, until its peer's close."""
    return [event.data async for event in port]


# -- returns ----------------------------------------------------------------------------------


async def test_transient_actor_that_returns_stops_and_its_ports_close() -> None:
    """A TRANSIENT process actor that returns is stopped for good: its process is reaped,
    its pid is gone, and the ports it was spawned with close at their peers."""
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(A.returns, channel.port2, restart=Restart.TRANSIENT, process=True)
        _, pid, incarnation = await data(channel.port1)
        assert (pid, incarnation) == (handle.pid, 1)
        assert pid != os.getpid()
        await handle.wait()
        assert pid not in child_pids()
    stats = handle.statistics()
    assert (stats.state, stats.restarts, handle.pid) == (ActorState.STOPPED, 0, None)
    assert await rest(channel.port1) == []


async def test_permanent_actor_that_returns_restarts_in_a_new_process() -> None:
    """A PERMANENT process actor that returns is restarted in a new process (a new pid,
    incarnation + 1) with the same ports; the old process was reaped first."""
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(A.returns_when_told, channel.port2, process=True)
        _, first, _ = await data(channel.port1)
        channel.port1.post_message("return")
        _, second, incarnation = await data(channel.port1)
        assert second != first
        assert (incarnation, handle.incarnation, handle.pid) == (2, 2, second)
        assert handle.statistics().restarts == 1
        assert first not in child_pids()
        handle.cancel()
    close_ports(channel)


async def test_permanent_actor_whose_process_died_restarts_with_its_ports() -> None:
    """A PERMANENT process actor whose process died is restarted in a new process, with the
    ports it was spawned with (kept by the parent): the peer sees no close, and talks to the
    new incarnation on the same port."""
    channel = MessageChannel()
    said: list[Any] = []

    async def tree() -> None:
        async with open_supervisor(max_restarts=1) as sup:
            sup.spawn(A.talks_until_cut_off, channel.port2, process=True)
            said.append(await data(channel.port1))
            os.kill(said[0][1], signal.SIGKILL)
            said.append(await data(channel.port1))  # the next incarnation says hello
            channel.port1.close()  # its loop ends: it raises, saying its peer is gone
            await trio.sleep_forever()  # until the supervisor gives up

    with pytest.raises(TooManyRestartsError) as info:
        await tree()
    (_, first, one), (_, second, two) = said
    assert (one, two) == (1, 2)
    assert second != first
    assert "incarnation 2" in str(info.value.__cause__)


# -- raises -----------------------------------------------------------------------------------


def _child_frames(error: BaseException) -> str:
    return "\n".join(getattr(error, "__notes__", ()))


async def test_exception_in_child_is_a_crash_of_its_own_type(logs: list[dict[str, Any]]) -> None:
    """An exception raised in the child is a crash of that actor, of its own type (its class
    is imported here), with the child's traceback in a note and in the `actor_crashed` log
    event; the supervisor's intensity applies: each restart is a new process, and one restart
    too many is a TooManyRestartsError whose cause is the last crash."""
    channel = MessageChannel()
    pids = set()

    async def tree() -> None:
        async with open_supervisor(max_restarts=1) as sup:
            sup.spawn(A.raises, channel.port2, "importable", process=True)
            for _ in range(2):
                pids.add((await data(channel.port1))[1])

    with pytest.raises(TooManyRestartsError) as info:
        await tree()
    assert len(pids) == 2
    crash = info.value.__cause__
    assert type(crash) is A.ActorFailure
    assert str(crash) == "it went wrong in the child"
    note = _child_frames(crash)
    assert "raised in process" in note
    assert 'raise ActorFailure("it went wrong in the child")' in note
    crashed = [entry for entry in logs if entry["event"] == "actor_crashed"]
    assert [entry["actor"] for entry in crashed] == ["root/raises", "root/raises"]
    for entry in crashed:
        logged = "".join(traceback.format_exception(entry["exc_info"]))
        assert "_process_actors.py" in logged
        assert "in raises" in logged
    close_ports(channel)


async def test_restart_after_an_exception_reads_the_messages_left_unread() -> None:
    """After an exception, the slot's ports come home with the messages the child had not
    read, and the next incarnation (a new process) reads them: none lost, none twice."""
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(A.reads_one_then_raises, channel.port2, process=True)
        for i in range(3):
            channel.port1.post_message(i)
        got = [await data(channel.port1) for _ in range(5)]
        handle.cancel()
    assert [g[0] for g in got] == ["pid", "read", "pid", "read", "read"]
    assert got[0][1] != got[2][1]
    assert [g[1:] for g in got if g[0] == "read"] == [(0, 1), (1, 2), (2, 2)]
    close_ports(channel)


async def test_exception_of_a_class_only_the_child_has_is_a_remote_error() -> None:
    """An exception whose class is not imported in the parent arrives as a RemoteError with
    its type's name, its message and the child's traceback."""
    assert "_child_only_errors" not in sys.modules
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(
            A.raises, channel.port2, "child_only", restart=Restart.TEMPORARY, process=True
        )
        await handle.wait()
    crash = handle.statistics().last_crash
    assert isinstance(crash, RemoteError)
    assert crash.type_name == "_child_only_errors.ChildOnlyError"
    assert crash.message == "only the child knows this class"
    assert str(crash) == "_child_only_errors.ChildOnlyError: only the child knows this class"
    assert "raise _child_only_errors.ChildOnlyError" in crash.traceback
    assert "raise _child_only_errors.ChildOnlyError" in _child_frames(crash)
    assert "_child_only_errors" not in sys.modules
    close_ports(channel)


# -- dies -------------------------------------------------------------------------------------

DEATHS = {
    "exit": ("os._exit(3)", 3, "exited with status 3"),
    "segfault": ("segfault", -signal.SIGSEGV, "was killed by SIGSEGV"),
    "sigkill": ("sigkill", -signal.SIGKILL, "was killed by SIGKILL"),
    "sigterm": ("sigterm", -signal.SIGTERM, "was killed by SIGTERM"),
}


@pytest.mark.parametrize("how", list(DEATHS))
async def test_process_that_dies_is_a_crash_and_its_ports_close(how: str) -> None:
    """A process that ends without its actor ending (os._exit, a segfault, SIGKILL or SIGTERM
    from outside) is a ProcessDiedError naming the exit status or signal; every port its
    incarnation owned closes at its peer after the messages that had arrived."""
    channel, own = MessageChannel(), MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(A.ends, channel.port2, how, restart=Restart.TEMPORARY, process=True)
        _, pid, _ = await data(channel.port1)
        channel.port1.post_message("yours", [own.port2])
        assert await data(channel.port1) == "posted"
        if how in ("sigkill", "sigterm"):
            os.kill(pid, signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
        assert await rest(own.port1) == [0, 1, 2]
        await handle.wait()
    crash = handle.statistics().last_crash
    assert isinstance(crash, ProcessDiedError)
    _, returncode, words = DEATHS[how]
    assert (crash.path, crash.pid, crash.returncode) == ("root/ends", pid, returncode)
    assert str(crash) == f"process actor root/ends (pid {pid}) {words}"
    close_ports(channel, own)


# -- cancelled --------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["handle", "supervisor", "scope"])
async def test_cancel_runs_the_childs_finally_blocks(via: str, logs: list[dict[str, Any]]) -> None:
    """Cancelling a process actor (handle.cancel(), sup.cancel(), a cancel scope around the
    supervisor) cancels the child's trio run: its finally blocks run, its process exits by
    itself (status 0), then the block exits."""
    channel = MessageChannel()
    with trio.CancelScope() as outer:
        async with open_supervisor() as sup:
            handle = sup.spawn(A.posts_from_finally, channel.port2, process=True)
            await data(channel.port1)
            if via == "handle":
                handle.cancel()
                await handle.wait()
            elif via == "supervisor":
                sup.cancel()
            else:
                outer.cancel()
    assert outer.cancelled_caught == (via == "scope")
    assert handle.statistics().state is ActorState.STOPPED
    assert await rest(channel.port1) == ["finally"]
    [exited] = [entry for entry in logs if entry["event"] == "actor_process_exited"]
    assert exited["returncode"] == 0


async def test_ctrl_c_interrupts_the_parent_which_stops_its_process_actors() -> None:
    """Ctrl-C (SIGINT to the whole foreground process group) interrupts the parent alone: a
    process actor ignores SIGINT, and the parent's supervisor stops it in order, so its
    finally blocks run and what they post arrives."""
    result = await trio.run_process(
        [sys.executable, str(ROOT / "tests" / "_interrupted.py")],
        capture_stdout=True,
        capture_stderr=True,
        env=checkout_env(),
        start_new_session=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "interrupted\n['finally']\n"
    assert b"Traceback" not in result.stderr


async def test_child_that_ignores_cancel_is_killed_at_its_deadline(
    logs: list[dict[str, Any]],
) -> None:
    """A child that does not end within `shutdown` seconds of its cancel (a shielded sleep)
    is SIGKILLed at the deadline; `actor_shutdown_timeout` is logged with its pid."""
    channel = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(A.ignores_cancel, channel.port2, process=True, shutdown=0.2)
        _, pid, _ = await data(channel.port1)
        sup.cancel()
    [entry] = [entry for entry in logs if entry["event"] == "actor_shutdown_timeout"]
    assert (entry["actor"], entry["pid"], entry["shutdown"]) == ("root/ignores_cancel", pid, 0.2)
    assert "SIGKILL" in entry["hint"]
    [exited] = [entry for entry in logs if entry["event"] == "actor_process_exited"]
    assert (exited["pid"], exited["returncode"]) == (pid, -signal.SIGKILL)
    assert await rest(channel.port1) == []


# -- start ------------------------------------------------------------------------------------


async def test_start_returns_the_started_value_with_a_usable_port() -> None:
    """start(process=True) returns the value the child gave task_status.started(); a port in
    it arrives entangled with its peer in the child."""
    channel = MessageChannel()
    async with open_supervisor() as sup:
        value = await sup.start(A.starts, channel.port2, process=True)
        [handle] = sup.children
        assert value["pid"] == handle.pid
        port = value["port"]
        assert isinstance(port, MessagePort)
        port.post_message("ping")
        assert await data(port) == ("echo", "ping")
        sup.cancel()
    assert await rest(channel.port1) == ["finally"]
    assert await rest(port) == []


async def test_crash_before_started_raises_in_start() -> None:
    """A child that raises before started() is not restarted: start() raises its crash."""
    async with open_supervisor() as sup:
        with pytest.raises(A.ActorFailure, match="crashed before started"):
            await sup.start(A.crashes_before_started, process=True)
        assert sup.children == ()


async def test_cancelled_start_stops_the_child() -> None:
    """A start() cancelled before the child called started() stops the child for good: its
    trio run is cancelled (its finally blocks run) and its process is reaped."""
    channel = MessageChannel()
    async with open_supervisor() as sup:
        async with trio.open_nursery() as nursery:

            async def start(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
                with trio.CancelScope() as scope:
                    task_status.started(scope)
                    await sup.start(A.never_starts, channel.port2, process=True)

            scope = await nursery.start(start)
            _, pid, _ = await data(channel.port1)
            scope.cancel()
        assert await rest(channel.port1) == ["finally"]
        assert sup.children == ()
        assert pid not in child_pids()


# -- a failed start ---------------------------------------------------------------------------


@pytest.mark.parametrize("why", ["deleted", "raises"])
async def test_child_that_cannot_import_the_function_crashes(
    why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that cannot import the actor's module (deleted since the parent imported it,
    or an exception at import time) is a crash with that exception: no hang, no zombie."""
    source = tmp_path / f"lifecycle_{why}.py"
    refuse = """
        import sys
        if getattr(sys.modules["__main__"].__spec__, "name", "") == "actors._process.child":
            raise LookupError("this module refuses to load in a child")
    """
    source.write_text(textwrap.dedent(refuse if why == "raises" else "") + "async def fn(): ...\n")
    monkeypatch.syspath_prepend(tmp_path)
    module = importlib.import_module(source.stem)
    try:
        if why == "deleted":
            source.unlink()
        with pytest.raises(TooManyRestartsError) as info:
            async with open_supervisor(max_restarts=0) as sup:
                sup.spawn(module.fn, process=True)
    finally:
        del sys.modules[source.stem]
    crash = info.value.__cause__
    if why == "deleted":
        assert type(crash) is ModuleNotFoundError
        assert str(crash) == f"No module named {source.stem!r}"
    else:
        assert type(crash) is LookupError
        assert str(crash) == "this module refuses to load in a child"


class _Holder:
    async def method(self, port: MessagePort) -> None: ...


async def test_function_the_child_cannot_import_is_refused_before_anything_moves() -> None:
    """A lambda, a closure or a method is a TypeError from spawn that says what to do, raised
    before anything is detached: the argument ports are still usable."""

    async def closure(port: MessagePort) -> None: ...

    channel = MessageChannel()
    async with open_supervisor() as sup:
        for fn in (lambda port: A.returns(port), closure, _Holder().method, _Holder.method):
            with pytest.raises(TypeError, match="top level of a module"):
                sup.spawn(fn, channel.port2, process=True)
            with pytest.raises(TypeError, match="top level of a module"):
                await sup.start(fn, channel.port2, process=True)
        assert sup.children == ()
    channel.port1.post_message("still entangled")
    assert await data(channel.port2) == "still entangled"
    close_ports(channel)


# -- the parent dies --------------------------------------------------------------------------


async def test_children_and_grandchildren_exit_when_the_parent_is_killed(tmp_path: Path) -> None:
    """A parent SIGKILLed: its process actors notice, are cancelled as it would have cancelled
    them (their finally blocks run, and their own process actors are stopped in order, as
    ever), and exit with status 70; one that ignores the cancel exits at its `shutdown`
    deadline, with status 70 too, and one with no deadline (`shutdown=None`) ORPHAN_GRACE
    seconds after.

    `_orphans.py` runs under a subreaper: it starts a driver whose process actor has a process
    actor of its own, each holding a file while it runs, and a process actor that ignores
    cancellation; it kills the driver once all three report, and checks that each ends within
    a bounded time, reaping the orphans."""
    result = await trio.run_process(
        [sys.executable, str(ROOT / "tests" / "_orphans.py"), "launch", str(tmp_path)],
        capture_stdout=True,
        capture_stderr=True,
        env=checkout_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    driver, child, grandchild, stubborn, patient = result.stdout.decode().splitlines()
    assert driver.endswith(" killed")
    assert child.endswith("=70")
    # Its parent (the child) cancelled it and reaped it, as it would have done any time.
    assert grandchild.endswith("=reaped-by-its-parent")
    assert stubborn.endswith("=70")  # it ignored the cancel: it exited at its deadline
    assert patient.endswith("=70")  # no deadline: an orphan still ends (ORPHAN_GRACE)
    assert os.listdir(tmp_path) == []  # both finally blocks ran


# -- logs, tree, pid --------------------------------------------------------------------------


async def test_child_log_events_reach_the_parents_pipeline(logs: list[dict[str, Any]]) -> None:
    """A log event emitted in a process actor reaches the parent's structlog pipeline with
    the actor's path and the child's pid bound."""
    channel = MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(A.logs_an_event, channel.port2, restart=Restart.TRANSIENT, process=True)
        _, pid, _ = await data(channel.port1)
        await handle.wait()
    [entry] = [entry for entry in logs if entry["event"] == "child_says"]
    assert (entry["answer"], entry["actor"], entry["pid"]) == (42, "root/logs_an_event", pid)
    assert entry["log_level"] == "info"
    close_ports(channel)


async def test_tree_shows_a_process_actors_pid() -> None:
    """Supervisor.tree() shows a process actor's pid (and none for an actor in this process);
    ActorHandle.pid is the live pid, None once it stopped."""
    channel, other = MessageChannel(), MessageChannel()
    async with open_supervisor() as sup:
        handle = sup.spawn(A.sleeps, channel.port2, process=True)
        here = sup.spawn(A.sleeps, other.port2)  # in this process
        _, pid, _ = await data(channel.port1)
        tree = sup.tree()
        process_node, here_node = tree.children
        assert (process_node.pid, here_node.pid) == (pid, None)
        assert f"sleeps  running  incarnation 1  pid {pid}  ports" in str(tree)
        assert "pid" not in str(here_node)
        assert here.pid is None
        sup.cancel()
    assert handle.pid is None
    close_ports(channel, other)


# -- the main script ---------------------------------------------------------------------------


SPAWNS_ITS_OWN_FUNCTION = textwrap.dedent("""
    import trio, actors

    async def worker():
        pass

    async def main():
        async with actors.open_supervisor() as sup:
            try:
                sup.spawn(worker, process=True)
            except TypeError as error:
                print(error)

    trio.run(main)
""")
"""A program whose __main__ has no file: run by `python -c` or from stdin."""


async def python(*args: str, stdin: bytes = b"", cwd: Path | None = None) -> Any:
    """`python *args` in the checkout's environment, its output captured (never raises)."""
    return await trio.run_process(
        [sys.executable, *args],
        stdin=stdin,
        capture_stdout=True,
        capture_stderr=True,
        env=checkout_env(),
        cwd=cwd,
        check=False,
    )


SCRIPT = """
import os, sys, trio, actors


class Refused(Exception):
    pass


async def worker(port):
    port.post_message((os.getpid(), __name__))
    raise Refused("from the main script")


async def main():
    channel = actors.MessageChannel()
    async with actors.open_supervisor() as sup:
        handle = sup.spawn(worker, channel.port2, restart=actors.Restart.TEMPORARY, process=True)
        pid, name = (await channel.port1.receive()).data
        await handle.wait()
    crash = handle.statistics().last_crash
    print(pid != os.getpid(), name, type(crash) is Refused, crash)
    channel.port1.close()


if __name__ == "__main__":
    trio.run(main)
"""


@pytest.mark.parametrize("run", ["script", "module"])
async def test_function_of_the_main_script_runs_in_a_process(run: str, tmp_path: Path) -> None:
    """A function defined in the main script (run as `python script.py`, or as `python -m
    module`) works as a process actor, as with multiprocessing's spawn method: the child runs
    the script as __mp_main__; a class of the script crosses as itself."""
    script = tmp_path / "lifecycle_main.py"
    script.write_text(SCRIPT)
    command = [str(script)] if run == "script" else ["-m", script.stem]
    result = await python(*command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "True __mp_main__ True from the main script\n"


async def test_function_of_python_c_is_a_type_error_that_says_what_to_do() -> None:
    """A function defined in the __main__ of `python -c` cannot be found by a child: spawn
    raises a TypeError that says to define it in a module."""
    result = await python("-c", SPAWNS_ITS_OWN_FUNCTION)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "'worker' is defined in __main__, which has no file" in out
    assert "python -c" in out
    assert "define it in a module the child can import" in out


NESTED_SCRIPT = """
import dataclasses, os, sys, trio, actors


@dataclasses.dataclass
class Point:
    x: int
    y: int


async def leaf(port):
    async for event in port:
        event.reply((os.getpid(), sys.argv[1:], event.data))


async def middle(port):
    async with actors.open_supervisor() as sup:
        inner = actors.MessageChannel()
        sup.spawn(leaf, inner.port2, process=True, restart=actors.Restart.TEMPORARY)
        async for event in port:
            event.reply((os.getpid(), await actors.ask(inner.port1, event.data)))
        inner.port1.close()


async def main():
    channel = actors.MessageChannel()
    async with actors.open_supervisor() as sup:
        sup.spawn(middle, channel.port2, process=True, restart=actors.Restart.TEMPORARY)
        # at once: the first message holds a class of this script
        mid, (low, argv, point) = await actors.ask(channel.port1, Point(1, 2))
        channel.port1.close()
    print(len({os.getpid(), mid, low}), argv, point == Point(1, 2), type(point) is Point)


if __name__ == "__main__":
    trio.run(main)
"""


async def test_the_main_script_serves_nested_process_actors_from_the_first_message(
    tmp_path: Path,
) -> None:
    """A process actor of the main script that spawns another of the same script: both run
    the script as __mp_main__ with the parent's sys.argv, and the very first message,
    posted before either process has started, holds a class of the script and crosses to the
    grandchild and back as itself."""
    script = tmp_path / "nested_main.py"
    script.write_text(NESTED_SCRIPT)
    result = await python(str(script), "first", "second", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "3 ['first', 'second'] True True\n"


UNGUARDED_SCRIPT = """
import trio, actors


async def worker(port):
    pass


async def main():
    channel = actors.MessageChannel()
    async with actors.open_supervisor() as sup:
        handle = sup.spawn(worker, channel.port2, process=True, restart=actors.Restart.TEMPORARY)
        await handle.wait()
    print(handle.statistics().last_crash)
    channel.port1.close()


trio.run(main)
"""


async def test_a_main_script_without_its_guard_crashes_saying_so(tmp_path: Path) -> None:
    """A main script that runs its program at import (no `if __name__ == "__main__":`) would
    run it again in the child: the actor crashes, with an error that says to add the guard."""
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    result = await python(str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "started its program when the process actor's process ran it" in out
    assert 'if __name__ == "__main__":' in out


async def test_function_of_a_script_read_from_stdin_is_a_type_error() -> None:
    """`python - < script`: its __main__ has no file to run again, so spawn refuses it."""
    result = await python("-", stdin=SPAWNS_ITS_OWN_FUNCTION.encode())
    assert result.returncode == 0, result.stderr.decode()
    assert "a script read from stdin" in result.stdout.decode()
