"""What the benchmark scripts in bench/ share: the method, the report, and their ``main``.

The method (see ``bench_ports.py``'s docstring): every figure is measured against its baseline
in the same process, with repeats interleaved (``interleave``); each figure is the median of
its repeats (``Series``) and each ratio is the ratio of the medians. A script keeps its own
figures: a ``Config`` (a frozen dataclass with ``repeats``), a ``run_all`` that returns one
``Row`` per figure, and the footnote under its table; ``run_main`` does the rest.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import json
import pstats
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import trio

# Measure the checkout this script is in: an installed `actors` (an editable install of
# another worktree, say) would otherwise come first, as a script's own folder heads sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import actors  # after the line above

perf_counter = time.perf_counter


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Series:
    """The repeats of one side of one figure, in seconds (per run, call or round)."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        return (max(self.samples) - min(self.samples)) / self.median


def interleave(repeats: int, sides: Sequence[tuple[Series, Callable[[], float]]]) -> None:
    """Run every side once per repeat, reversing the order every other repeat (ABBA...)."""
    for _, run in sides:  # warm-up: imports, caches, code paths; not recorded
        gc.collect()
        run()
    for r in range(repeats):
        order = sides if r % 2 == 0 else list(reversed(sides))
        for series, run in order:
            gc.collect()
            series.samples.append(run())


def trio_runner(fn: Callable[[int], Awaitable[float]], n: int) -> Callable[[], float]:
    return lambda: trio.run(fn, n)


def traced_now() -> int:
    """The bytes tracemalloc traces now, after a full collection."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


# -- reporting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    figure: str
    ours: str
    baseline: str
    ratio: float | None
    target: str
    passed: bool | None
    noise: str


def noise(*series: Series) -> str:
    return "±" + "/".join(f"{s.spread / 2:.0%}" for s in series)


def print_table(rows: list[Row], footnote: str) -> None:
    headers = ("figure", "ours", "baseline", "ratio", "target", "result", "noise")
    cells = [
        (
            row.figure,
            row.ours,
            row.baseline,
            "—" if row.ratio is None else f"{row.ratio:.3f}",
            row.target,
            "info" if row.passed is None else ("PASS" if row.passed else "SHORT"),
            row.noise,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [headers, *cells]) for i in range(len(headers))]
    for line in [headers, tuple("-" * w for w in widths), *cells]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    print(footnote)


def print_verdicts(rows: list[Row], baseline: str) -> None:
    """One line per figure with a target: the ratio against it (``baseline`` names the
    baseline: "{ratio}x {baseline}")."""
    print()
    for row in rows:
        if row.passed is not None and row.ratio is not None:
            verdict = "PASS" if row.passed else "SHORT"
            print(f"{row.figure}: {row.ratio:.3f}x {baseline}, target {row.target} -> {verdict}")


def report_profile(label: str, profiler: cProfile.Profile, top: int) -> None:
    """A cProfile run: own time by area (actors/, trio/, ...), then the ``top`` functions of
    actors/ and overall by own time."""
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    by_area: dict[str, float] = {}
    ours = []
    for (filename, line, function), (_, calls, tottime, cumtime, _) in raw.items():
        path = filename.replace("\\", "/")
        if "/actors/" in path:
            area = "actors/"
            ours.append((tottime, cumtime, calls, f"{Path(path).name}:{line}({function})"))
        elif "/trio/" in path:
            area = "trio/"
        elif "/structlog/" in path:
            area = "structlog/"
        elif filename == "~":
            area = "builtins"
        else:
            area = "other"
        by_area[area] = by_area.get(area, 0.0) + tottime
    print(f"\n== {label}: {total:.3f} s under cProfile (it inflates call-heavy code)")
    shares = sorted(by_area.items(), key=lambda kv: -kv[1])
    print("own time by area: " + ", ".join(f"{k} {v / total:.0%}" for k, v in shares))
    if ours:
        print(f"top {top} functions of actors/ by own time (own %, cumulative %, calls):")
        for tottime, cumtime, calls, name in sorted(ours, reverse=True)[:top]:
            print(f"  {tottime / total:6.1%}  {cumtime / total:6.1%}  {calls:8d}  {name}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    print(f"top {top} functions overall by own time:")
    print("\n".join(line for line in lines[start:] if line.strip()))


def source_state() -> str:
    """The commit measured, and whether actors/ differs from it (or "" without git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "actors"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return ""
    if not head:
        return ""
    return f"commit {head}" + (" + uncommitted changes in actors/" if dirty else "")


# -- main ---------------------------------------------------------------------------------


class Config(Protocol):
    """A script's frozen dataclass of sizes; ``--repeats`` replaces its ``repeats``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def repeats(self) -> int: ...


C = TypeVar("C", bound=Config)


def run_main(
    doc: str,
    argv: Sequence[str] | None,
    *,
    full: C,
    quick: C,
    run: Callable[[C, argparse.Namespace], list[Row]],
    footnote: Callable[[C], str],
    no_node_help: str,
    verdicts: str | None = None,
    profile: Callable[[C, int], None] | None = None,
    preamble: Callable[[argparse.Namespace], None] | None = None,
) -> int:
    """A script's ``main``: parse the common options (``--profile`` and ``--top`` only with a
    ``profile``), print ``preamble``'s lines and the header, then either ``profile`` or the
    figures: ``run``, the table with ``footnote``, one verdict line per target figure if
    ``verdicts`` names the baseline, and ``--json``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats (smoke run)")
    parser.add_argument(
        "--repeats",
        type=int,
        help=f"repeats per figure (default {full.repeats}, quick {quick.repeats})",
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    if profile is not None:
        parser.add_argument(
            "--profile", action="store_true", help="print where our time goes instead of figures"
        )
        parser.add_argument("--top", type=int, default=15, help="rows per --profile table")
    parser.add_argument("--no-node", action="store_true", help=no_node_help)
    args = parser.parse_args(argv)

    config = quick if args.quick else full
    if args.repeats is not None:
        config = dataclasses.replace(config, repeats=args.repeats)
    if preamble is not None:
        preamble(args)
    print(
        f"Python {sys.version.split()[0]}, trio {trio.__version__}, "
        f"actors {actors.__version__} {source_state()}{' (quick)' if args.quick else ''}"
    )
    if profile is not None and args.profile:
        profile(config, args.top)
        return 0

    t0 = perf_counter()
    rows = run(config, args)
    print(f"\ndone in {perf_counter() - t0:.1f} s\n")
    print_table(rows, footnote(config))
    if verdicts is not None:
        print_verdicts(rows, verdicts)
    if args.json is not None:
        data: list[dict[str, Any]] = [row.__dict__ for row in rows]
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return 0
