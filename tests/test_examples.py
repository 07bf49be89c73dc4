"""Every script in examples/ runs to completion and says what it promises."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _helpers import checkout_env

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
EXPECTED = {
    "chat_room.py": "chat_room done: 3 joined, bob left, carol crashed, 1 member still in the room",
    "echo.py": "echo done: the client heard of the actor's death",
    "kv_store.py": "kv_store done: the store restarted and every client reconnected by name",
    "parallel_map.py": "parallel_map done: 2 workers agree with the in-process count",
    "pipeline.py": "pipeline done: 7 orders, 115.51 in total",
    "supervised_worker.py": "supervised_worker done: TooManyRestartsError at incarnation 4",
    "word_count.py": "117 words, 83 distinct",
}
ARGS = {"parallel_map.py": ["--workers", "2", "--limit", "20000"]}  # small work: a fast test


def test_every_example_is_checked() -> None:
    """A new example needs an expected line here, so none goes untested."""
    assert {path.name for path in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path) -> None:
    """The example exits 0, prints its expected result, and leaves no process behind."""
    mark = uuid.uuid4().hex  # in the environment of the example and of every process it starts
    done = subprocess.run(
        [sys.executable, str(path), *ARGS.get(path.name, [])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**checkout_env(), "ACTORS_EXAMPLE_RUN": mark},
    )
    assert done.returncode == 0, done.stderr
    assert EXPECTED[path.name] in done.stdout
    assert "Traceback" not in done.stderr  # crashes an example shows are logged on one line
    assert not processes_marked(mark)


def processes_marked(mark: str) -> list[int]:
    """The live processes whose environment holds ``mark`` (none where there is no /proc).

    An example reaps the processes it starts; one still running after it exited was orphaned.
    """
    found: list[int] = []
    needle = f"ACTORS_EXAMPLE_RUN={mark}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return found
