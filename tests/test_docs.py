"""Every Python block in docs/ runs, and prints exactly the Output block that follows it.

A ```python block may be followed (with nothing but blank lines between) by ```text blocks
titled "Output" (stdout) or "stderr". Without them the block must print nothing. Memory
addresses and timestamps are normalised. This keeps the docs from drifting from the code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)
NOISE = [
    (re.compile(r"0x[0-9a-f]+"), "0x..."),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "YYYY-MM-DD HH:MM:SS"),
]


def normalise(text: str) -> str:
    for pattern, replacement in NOISE:
        text = pattern.sub(replacement, text)
    return text.rstrip()


def python_blocks() -> list[tuple[str, str, str | None, str | None]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        fences = list(FENCE.finditer(text))
        for i, fence in enumerate(fences):
            if fence.group(1) != "python":
                continue
            stdout = stderr = None
            end = fence.end()
            for following in fences[i + 1 :]:
                if following.group(1) != "text" or text[end : following.start()].strip():
                    break
                if "stderr" in following.group(2):
                    stderr = following.group(3)
                else:
                    stdout = following.group(3)
                end = following.end()
            line = text[: fence.start()].count("\n") + 1
            found.append((f"{page.name}:{line}", fence.group(3), stdout, stderr))
    return found


BLOCKS = python_blocks()


def test_docs_have_examples() -> None:
    """The docs pages exist and hold runnable examples."""
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize(("where", "code", "stdout", "stderr"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_doc_example(
    where: str, code: str, stdout: str | None, stderr: str | None, tmp_path: Path
) -> None:
    """The example runs and prints exactly what the page says it prints."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert normalise(done.stdout) == normalise(stdout or "")
    assert normalise(done.stderr) == normalise(stderr or "")
