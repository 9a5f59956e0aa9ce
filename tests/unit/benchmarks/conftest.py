"""The benchmark suite's modules live in benchmarks/ (scripts, not a package): import them
from there."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[3] / "benchmarks"))
