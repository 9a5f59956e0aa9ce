"""The trace replay on tiny hand-made traces: which invocations are cold and how much memory
instances spend idle, under a fixed keep-alive and under the hybrid policy."""

from __future__ import annotations

import pytest

from lamina.scaling.keepalive import HybridSpec
from lamina.scaling.simulate import FixedKeepAlive, Invocation, nearest_rank, replay

TEN_MINUTES = FixedKeepAlive(600.0)


def test_a_fixed_keep_alive_warms_gaps_shorter_than_it_and_bills_the_idle_memory() -> None:
    trace = [
        # a, 100 MB: cold; 300 s gap (warm, 300 s idle); 1200 s gap (cold, 600 s idle)
        Invocation("a", 0, 10, 100),
        Invocation("a", 310, 10, 100),
        Invocation("a", 1520, 10, 100),
        # b, 200 MB: cold; the second arrives while the first runs (warm); then idle from
        # 7 s to the trace's end at 1530 s, of which 600 s kept
        Invocation("b", 0, 5, 200),
        Invocation("b", 2, 5, 200),
    ]
    result = replay(trace, TEN_MINUTES)
    a, b = result.functions
    assert (a.function, a.invocations, a.cold_starts, a.idle_mb_s) == ("a", 3, 2, 90_000)
    assert (b.function, b.invocations, b.cold_starts, b.idle_mb_s) == ("b", 2, 1, 120_000)
    assert result.policy == "fixed:10m"
    assert (result.invocations, result.cold_starts) == (5, 3)
    assert result.idle_gb_s == pytest.approx(210_000 / 1024)
    assert result.cold_pct_at(50) == 50.0
    assert result.cold_pct_at(75) == pytest.approx(200 / 3)


REGULAR = [Invocation("t", t, 0, 128) for t in (0, 1000, 2000, 3000)]


def test_the_hybrid_policy_learns_a_regular_gap_and_pre_warms_before_it() -> None:
    # Idle times of 1000 s (bin 16). Before 2 are known the fallback keeps the instance 4 h
    # (warm, 1000 s idle twice). Then head 960 s and tail 1020 s: pre-warm at 864 s, kept
    # until 1122 s; the arrival at 1000 s is warm after 136 s idle. After the last one the
    # pre-warmed instance is kept its full 258 s before the trace ends at 5000 s.
    result = replay(REGULAR, HybridSpec(min_samples=2), end_s=5000)
    [t] = result.functions
    assert (t.invocations, t.cold_starts) == (4, 1)
    assert t.idle_mb_s == pytest.approx((1000 + 1000 + 136 + 258) * 128)
    assert result.policy == "hybrid"


def test_the_same_regular_trace_is_all_cold_under_a_ten_minute_keep_alive() -> None:
    result = replay(REGULAR, TEN_MINUTES, end_s=5000)
    [t] = result.functions
    assert (t.invocations, t.cold_starts) == (4, 4)
    assert t.idle_mb_s == 4 * 600 * 128


def test_an_arrival_before_the_pre_warm_is_cold_and_costs_no_idle_memory() -> None:
    early = [*REGULAR, Invocation("t", 3500, 0, 128)]  # 500 s after: before the 864 s pre-warm
    [t] = replay(early, HybridSpec(min_samples=2), end_s=3500).functions
    assert (t.invocations, t.cold_starts) == (5, 2)
    assert t.idle_mb_s == pytest.approx((1000 + 1000 + 136) * 128)


@pytest.mark.parametrize(
    ("percentile", "expected"),
    [(0, 0.0), (25, 0.0), (50, 10.0), (75, 20.0), (100, 50.0)],
)
def test_the_function_percentile_is_the_nearest_rank(percentile: float, expected: float) -> None:
    assert nearest_rank([0.0, 10.0, 20.0, 50.0], percentile) == expected
