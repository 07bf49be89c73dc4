"""The public surface: every name exported, public classes final, shown as ``actors.X``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import actors


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` lists every public name once, sorted, and each one exists."""
    assert list(actors.__all__) == sorted(set(actors.__all__))
    public = {n for n in vars(actors) if not n.startswith("_")} - {"annotations"}
    assert public == set(actors.__all__)


@pytest.mark.parametrize(
    "name", [n for n in actors.__all__ if hasattr(getattr(actors, n), "__module__")]
)
def test_public_names_live_in_actors(name: str) -> None:
    """Reprs and tracebacks show ``actors.X``, not a private module (constants aside)."""
    assert getattr(actors, name).__module__ == "actors"


@pytest.mark.parametrize(
    "name", [n for n in actors.__all__ if isinstance(getattr(actors, n), type)]
)
def test_public_classes_are_final(name: str) -> None:
    """Public classes are ``@final``: users compose, they do not subclass."""
    assert getattr(getattr(actors, name), "__final__", False)


def test_the_package_is_typed() -> None:
    """``py.typed`` ships, so type checkers read our annotations."""
    assert (Path(actors.__file__).parent / "py.typed").exists()


def test_readme_example_runs() -> None:
    """The README's example runs and prints what its comment says."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", readme, re.S)
    assert match is not None
    done = subprocess.run(
        [sys.executable, "-c", match.group(1)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello, world!"


def test_readme_example_runs_with_its_actor_in_another_process(tmp_path: Path) -> None:
    """The README's promise: add `process=True` to the spawn and nothing else changes."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", readme, re.S)
    assert match is not None
    spawn = "supervisor.spawn(greeter, channel.port2, restart=Restart.TRANSIENT)"
    assert spawn in match.group(1)
    script = tmp_path / "readme_example.py"
    script.write_text(match.group(1).replace(spawn, spawn[:-1] + ", process=True)"))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello, world!"


def test_readme_example_is_the_home_page_example() -> None:
    """The README shows the docs home page's example, byte for byte (which test_docs runs)."""
    root = Path(__file__).parent.parent
    match = re.search(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S)
    assert match is not None
    assert match.group(1) == (root / "docs/snippets/home/greeter.py").read_text()


async def test_a_port_is_a_trio_receive_channel() -> None:
    """Ports go wherever trio code takes a ReceiveChannel[MessageEvent]."""
    import trio

    from actors import MessageChannel, MessageEvent

    async def drain(channel: trio.abc.ReceiveChannel[MessageEvent]) -> list[object]:
        async with channel:
            return [event.data async for event in channel]

    pair = MessageChannel()
    assert isinstance(pair.port2, trio.abc.ReceiveChannel)
    assert not isinstance(pair.port2, trio.abc.SendChannel)
    pair.port1.post_message("a")
    pair.port1.post_message("b")
    pair.port1.close()
    assert await drain(pair.port2) == ["a", "b"]
    assert pair.port2.statistics().closed  # async with closed it


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("MessagePort", "MessageChannel()"),
        ("ActorHandle", "Supervisor.spawn()"),
        ("Supervisor", "open_supervisor()"),
    ],
)
def test_classes_without_a_constructor_say_where_objects_come_from(name: str, hint: str) -> None:
    """Calling a class only the library makes is a TypeError that names the way to get one."""
    with pytest.raises(TypeError, match=re.escape(hint)):
        getattr(actors, name)()
