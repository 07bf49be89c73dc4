"""Run the example as `.venv/bin/python examples/word_count.py` does."""

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]  # the repository
runpy.run_path(str(ROOT / "examples" / "word_count.py"), run_name="__main__")
