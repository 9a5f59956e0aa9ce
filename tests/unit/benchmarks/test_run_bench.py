"""The figures `benchmarks/run.py` reports."""

from __future__ import annotations

import pytest
from run import FLOOR, p99, ratios


def test_p99_of_50_cold_starts_lies_between_the_two_slowest() -> None:
    # One slow cold start among 49 fast ones: its p99 is no slower than the slowest sample
    # (the default `statistics.quantiles` method reported 21.1 ms for a maximum of 16.4 ms).
    samples = [4.0 + i / 100 for i in range(49)] + [16.0]
    assert 4.48 < p99(samples) < 16.0
    assert p99(samples) == pytest.approx(4.48 + 0.51 * (16.0 - 4.48))


def test_p99_of_a_hundred_samples_is_near_the_99th() -> None:
    assert p99([float(i) for i in range(1, 101)]) == pytest.approx(99.01)


def _run(rps: float) -> dict[str, float]:
    return {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0.0}


def test_each_lamina_run_is_compared_with_the_floor_run_of_its_own_pair() -> None:
    # The machine halves its speed after the first pair: against the floor's mean (30K) the
    # no-op runs would read 0.33x and 0.67x; against their own pair's floor each is 0.5x.
    runs = {
        FLOOR: [_run(40_000), _run(20_000), _run(40_000), _run(20_000)],  # no-op's, printing's
        "Lamina, no-op, recording on": [_run(20_000), _run(10_000)],
        "Lamina, prints a line, recording on": [_run(16_000), _run(6_000)],
        "Lamina, no-op, recording on, --http granian": [_run(1.0)],  # two pairs only: left out
    }
    notes = ratios(runs)
    assert set(notes) == {"Lamina, no-op, recording on", "Lamina, prints a line, recording on"}
    assert "median 0.50x (0.50, 0.50)" in notes["Lamina, no-op, recording on"]
    assert "median 0.35x (0.40, 0.30)" in notes["Lamina, prints a line, recording on"]
