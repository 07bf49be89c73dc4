#!/usr/bin/env python3
"""Set up the project's virtual environment and run one task in it.

    python3 dev.py demo     # the main demo (examples/parallel_map.py)
    python3 dev.py test     # the whole test suite
    python3 dev.py setup    # only create or update .venv (then run anything with .venv/bin/python)
    python3 dev.py lint     # ruff check, ruff format --check, mypy --strict
    python3 dev.py docs     # serve the documentation site at http://127.0.0.1:8000
    python3 dev.py docs-build   # build it into site/ as CI does (mkdocs build --strict)
    python3 dev.py docs-shots   # screenshots of pages in headless Chromium, into site-shots/
    python3 dev.py bench    # the benchmarks in bench/: bench_ports.py, bench_actors.py,
                            # then bench_broadcast.py

Needs nothing but Python >= 3.11. Idempotent: the first run creates `.venv` and installs the
project with its test, dev and docs extras; later runs reinstall only when pyproject.toml
changed.
Extra arguments after the task go to the tool (e.g. `python3 dev.py test -k transfer`); for
bench, to every script (`--quick`, `--repeats N`, `--no-node`; give `--json` to one script
directly, as they would all write the same file).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".actors-installed"


def _run(*cmd: str | Path) -> int:
    # NO_MKDOCS_2_WARNING: Material's banner about its successor, printed at every build
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under any python3
        sys.exit(f"actors needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"dev.py: creating {VENV.relative_to(ROOT)}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    print("dev.py: installing actors with its test, dev and docs extras", flush=True)
    quiet = ["--quiet", "--disable-pip-version-check"]
    if _run(PY, "-m", "pip", "install", *quiet, "--upgrade", "pip") != 0:
        sys.exit("dev.py: upgrading pip failed")
    if _run(PY, "-m", "pip", "install", *quiet, "-e", ".[test,dev,docs]") != 0:
        sys.exit("dev.py: installing the project failed")
    STAMP.write_text(want)


def main(argv: list[str]) -> int:
    tasks: dict[str, list[list[str | Path]]] = {
        "demo": [[PY, "examples/parallel_map.py"]],
        "test": [[PY, "-m", "pytest"]],
        "docs": [[BIN / "mkdocs", "serve", "--dev-addr", "127.0.0.1:8000"]],
        "docs-build": [[BIN / "mkdocs", "build", "--strict"]],
        "docs-shots": [[PY, "docs/_screenshots.py"]],
        "bench": [
            [PY, "bench/bench_ports.py"],
            [PY, "bench/bench_actors.py"],
            [PY, "bench/bench_broadcast.py"],
        ],
    }
    if not argv or argv[0] not in {*tasks, "lint", "setup"}:
        print(__doc__)
        return 2
    task, extra = argv[0], argv[1:]
    ensure_venv()
    if task == "setup":
        return 0
    if task == "lint":
        for cmd in (
            [BIN / "ruff", "check", "."],
            [BIN / "ruff", "format", "--check", "."],
            [BIN / "mypy", "--strict", "actors", "tests/typing_checks.py"],
        ):
            if rc := _run(*cmd):
                return rc
        return 0
    for command in tasks[task]:
        if rc := _run(*command, *extra):
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
