"""The figures `benchmarks/ab.py` reports from its pairs of runs."""

from __future__ import annotations

import pytest
from ab import Pair, summary, tree_first
from loadgen import Load


def _load(rps: float, p99_ms: float = 1.0) -> Load:
    return Load(
        requests=int(rps * 10),
        duration_s=10.0,
        errors={},
        percentiles=((50.0, p99_ms / 2), (99.0, p99_ms), (99.9, p99_ms * 2)),
        max_ms=p99_ms,
    )


def test_the_summary_is_the_median_of_the_pairs_ratios_not_the_ratio_of_medians() -> None:
    # The machine slowed down between pairs: each pair's ratio is what compares the two.
    pairs = [
        Pair(_load(1000), _load(1100)),
        Pair(_load(500), _load(600, p99_ms=3.0)),
        Pair(_load(800), _load(760)),
    ]
    s = summary(pairs)
    assert s["median_ratio"] == pytest.approx(1.1)
    assert (s["min_ratio"], s["max_ratio"]) == (pytest.approx(0.95), pytest.approx(1.2))
    assert s["won"] == 2
    assert (s["base_rps"], s["tree_rps"]) == (800, 760)
    assert s["tree_p99"] == 1.0 and s["tree_p999"] == 2.0


def test_the_order_within_a_pair_alternates() -> None:
    assert [tree_first(i) for i in range(4)] == [True, False, True, False]


def test_the_event_loop_cpu_per_request_is_compared_pair_by_pair() -> None:
    pairs = [
        Pair(_load(1000), _load(1100), base_loop_us=80.0, tree_loop_us=76.0),
        Pair(_load(500), _load(600), base_loop_us=160.0, tree_loop_us=144.0),
        Pair(_load(800), _load(760), base_loop_us=100.0, tree_loop_us=None),  # not measured
    ]
    assert pairs[0].loop_ratio == pytest.approx(0.95)
    assert pairs[2].loop_ratio is None
    s = summary(pairs)
    assert s["median_loop_ratio"] == pytest.approx(0.925)  # of the two pairs that have both
    assert (s["base_loop_us"], s["tree_loop_us"]) == (100.0, 110.0)
