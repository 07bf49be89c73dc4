"""Run the example as `.venv/bin/python examples/pipeline.py` does."""

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]  # the repository
runpy.run_path(str(ROOT / "examples" / "pipeline.py"), run_name="__main__")
