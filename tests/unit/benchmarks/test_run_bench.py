"""The figures `benchmarks/run.py` reports."""

from __future__ import annotations

import pytest
from run import p99


def test_p99_of_50_cold_starts_lies_between_the_two_slowest() -> None:
    # One slow cold start among 49 fast ones: its p99 is no slower than the slowest sample
    # (the default `statistics.quantiles` method reported 21.1 ms for a maximum of 16.4 ms).
    samples = [4.0 + i / 100 for i in range(49)] + [16.0]
    assert 4.48 < p99(samples) < 16.0
    assert p99(samples) == pytest.approx(4.48 + 0.51 * (16.0 - 4.48))


def test_p99_of_a_hundred_samples_is_near_the_99th() -> None:
    assert p99([float(i) for i in range(1, 101)]) == pytest.approx(99.01)
