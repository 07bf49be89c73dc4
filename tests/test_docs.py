"""No code in the docs drifts from the code: every block comes from a file that a test runs.

The rule, for every page under docs/:

* A ```python block holds nothing but ``--8<--`` includes of files under ``docs/snippets/``
  or ``examples/`` (pymdownx.snippets pastes them in at build time).
* A ```text block titled "Output" or "stderr" holds nothing but an include of a ``.out`` or
  ``.err`` file beside its snippet.
* Every snippet ``NAME.py`` under docs/snippets/ runs, and prints exactly ``NAME.out`` on
  stdout and ``NAME.err`` on stderr (an absent file means "prints nothing"). Memory addresses
  and timestamps are normalised.
* A snippet named ``test_*.py`` is a pytest module (the testing tutorial): it must pass.
* Every snippet file is included by some page, so none is left behind by an edit.

Files under examples/ are run by test_examples.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import checkout_env

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
FENCE = re.compile(r"^([ \t]*)```(\w+)([^\n]*)\n(.*?)^\1```\s*$", re.M | re.S)
INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+?)(?::[\w-]+)?"\s*$')
NOISE = [
    (re.compile(r"0x[0-9a-f]+"), "0x..."),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "YYYY-MM-DD HH:MM:SS"),
]


def normalise(text: str) -> str:
    for pattern, replacement in NOISE:
        text = pattern.sub(replacement, text)
    return text.rstrip()


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if SNIPPETS not in p.parents)


def fences() -> list[tuple[str, str, str, str]]:
    """(where, language, title, body) of every fenced block in the docs."""
    found = []
    for page in pages():
        text = page.read_text()
        for fence in FENCE.finditer(text):
            line = text[: fence.start()].count("\n") + 1
            where = f"{page.relative_to(DOCS)}:{line}"
            found.append((where, fence.group(2), fence.group(3), fence.group(4)))
    return found


def includes(body: str) -> list[str]:
    """The files a block includes (its ``--8<--`` lines)."""
    return [m.group(1) for line in body.splitlines() if (m := INCLUDE.match(line))]


FENCES = fences()
CODE = [
    f for f in FENCES if f[1] == "python" or (f[1] == "text" and re.search("Output|stderr", f[2]))
]
SCRIPTS = sorted(p for p in SNIPPETS.rglob("*.py") if not p.name.startswith("test_"))
TEST_MODULES = sorted(SNIPPETS.rglob("test_*.py"))


def test_docs_have_examples() -> None:
    """The pages exist and hold many runnable examples."""
    assert len(CODE) >= 40
    assert len(SCRIPTS) >= 40


@pytest.mark.parametrize(("where", "language", "title", "body"), CODE, ids=[f[0] for f in CODE])
def test_code_blocks_only_include_tested_files(
    where: str, language: str, title: str, body: str
) -> None:
    """A code or output block is an include of a file under docs/snippets/ or examples/."""
    lines = [line for line in body.splitlines() if line.strip()]
    assert lines, f"{where}: an empty block"
    assert len(includes(body)) == len(lines), (
        f"{where}: inline code, not an include: {body[:200]!r}"
    )
    for target in includes(body):
        path = ROOT / target
        assert path.is_file(), f"{where} includes {target}, which does not exist"
        if language == "python":
            assert path.suffix == ".py"
            assert path.parent.is_relative_to(SNIPPETS) or path.parent == ROOT / "examples"
        else:
            assert path.suffix in {".out", ".err"}
            assert path.parent.is_relative_to(SNIPPETS)


def test_every_snippet_is_shown_somewhere() -> None:
    """No snippet file is orphaned: each is included by at least one page."""
    included = {ROOT / t for _, _, _, body in FENCES for t in includes(body)}
    files = {p for p in SNIPPETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    helpers = {p for p in files if p.name.startswith("_") or p.name == "conftest.py"}
    assert sorted(map(str, files - helpers - included)) == []


@pytest.mark.parametrize("script", SCRIPTS, ids=[str(p.relative_to(SNIPPETS)) for p in SCRIPTS])
def test_snippet_prints_what_the_page_says(script: Path, tmp_path: Path) -> None:
    """The snippet runs, and prints exactly the Output (and stderr) the page shows."""
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
        env=checkout_env(),
    )
    assert done.returncode == 0, done.stderr
    out, err = script.with_suffix(".out"), script.with_suffix(".err")
    assert normalise(done.stdout) == normalise(out.read_text() if out.exists() else "")
    assert normalise(done.stderr) == normalise(err.read_text() if err.exists() else "")


@pytest.mark.parametrize(
    "module", TEST_MODULES, ids=[str(p.relative_to(SNIPPETS)) for p in TEST_MODULES]
)
def test_snippet_test_modules_pass(module: Path) -> None:
    """The testing tutorial's test modules pass under pytest, with the project's settings."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\d+ passed", done.stdout), done.stdout


def test_reference_documents_every_public_name() -> None:
    """Every name in ``actors.__all__`` has a ``::: actors.NAME`` entry in docs/reference/."""
    import actors

    text = "\n".join(p.read_text() for p in (DOCS / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: actors\.(\w+)\s*$", text, re.M))
    assert sorted(set(actors.__all__) - documented) == []
    assert sorted(documented - set(actors.__all__)) == []


def test_reference_member_lists_are_complete() -> None:
    """Where a reference entry lists its members by hand (to order them, or to show inherited
    ones), it lists every public attribute of the class: a new method cannot go missing."""
    import actors

    text = "\n".join(p.read_text() for p in sorted((DOCS / "reference").glob("*.md")))
    entry = re.compile(r"^::: actors\.(\w+)\n((?:    .*\n)*)", re.M)
    checked = 0
    for match in entry.finditer(text):
        listed = re.search(r"^      members:\n((?:        - \w+\n)+)", match.group(2), re.M)
        if listed is None:
            continue
        members = set(re.findall(r"- (\w+)", listed.group(1)))
        cls = getattr(actors, match.group(1))
        public = {name for name in dir(cls) if not name.startswith("_")}
        assert sorted(public - members) == [], match.group(1)
        checked += 1
    assert checked >= 4
