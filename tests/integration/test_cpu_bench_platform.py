"""benchmarks/cpu.py against a real platform: it finds the event-loop thread, the instances and
the telemetry writer in the platform's tree and charges each some CPU per request. No speed is
asserted: speed goals are benchmark figures, not tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_one_short_run_charges_cpu_to_the_loop_the_instances_and_the_writer() -> None:
    cmd = [sys.executable, str(BENCH / "cpu.py"), "--runs", "1", "--duration", "1", "--markdown"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {
        cells[0]: cells[1]
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("|  |")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert float(rows["requests/s"]) > 0
    for kind in ("platform: event-loop thread", "instances", "telemetry writer"):
        assert float(rows[f"CPU µs per request: {kind}"]) > 0, kind
    assert 0 < float(rows["instance sleeps per request"]) <= 2
    assert 0 < float(rows["event-loop thread: share of the run on a core"].rstrip("%")) <= 100
