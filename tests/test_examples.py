"""Every script in examples/ runs to completion and says what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import checkout_env

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
EXPECTED = {
    "chat_room.py": "chat_room done: 3 joined, bob left, carol crashed, 1 member still in the room",
    "echo.py": "echo done: the client heard of the actor's death",
    "kv_store.py": "kv_store done: the store restarted and every client reconnected by name",
    "pipeline.py": "pipeline done: 7 orders, 115.51 in total",
    "supervised_worker.py": "supervised_worker done: TooManyRestartsError at incarnation 4",
    "word_count.py": "117 words, 83 distinct",
}


def test_every_example_is_checked() -> None:
    """A new example needs an expected line here, so none goes untested."""
    assert {path.name for path in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path) -> None:
    """The example exits 0 and prints its expected result."""
    done = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=checkout_env(),
    )
    assert done.returncode == 0, done.stderr
    assert EXPECTED[path.name] in done.stdout
    assert "Traceback" not in done.stderr  # crashes an example shows are logged on one line
