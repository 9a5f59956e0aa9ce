"""Dashboard time series: percentiles from duration histograms, aligned zero-filled buckets,
totals, and the window checks that guard `GET /stats`."""

from __future__ import annotations

import itertools

import pytest

from lamina.dashboard.series import DURATION_BOUNDS_MS, MAX_BUCKETS, Window, percentile, series
from lamina.store.types import StatsRow

BOUNDS = (1.0, 2.0, 4.0)


@pytest.mark.parametrize(
    ("counts", "q", "expected"),
    [
        pytest.param([0, 4, 4], 0.5, 2.0, id="the median is the last rank of bin 1: its bound"),
        pytest.param([0, 4, 4], 0.75, 3.0, id="p75 lies half-way through bin 2"),
        pytest.param([2, 0, 0], 0.5, 0.5, id="bin 0 starts at zero"),
        pytest.param([0, 0, 0, 5], 0.99, 4.0, id="past the last bound: the last bound"),
        pytest.param([1, 0, 0, 0], 1.0, 1.0, id="p100 is the top of the highest non-empty bin"),
    ],
)
def test_percentile_interpolates_within_its_bin(
    counts: list[int], q: float, expected: float
) -> None:
    assert percentile(counts, q, BOUNDS) == pytest.approx(expected)


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([0, 0, 0, 0], 0.5, BOUNDS) is None


def test_duration_bounds_rise_by_a_quarter_from_a_tenth_of_a_ms_to_a_thousand_s() -> None:
    assert DURATION_BOUNDS_MS[0] == 0.1 and DURATION_BOUNDS_MS[-1] == 1_000_000
    ratios = [b / a for a, b in itertools.pairwise(DURATION_BOUNDS_MS)]
    assert all(1.2 < r < 1.32 for r in ratios)


def _bin(ms: float) -> int:
    return next(i for i, b in enumerate(DURATION_BOUNDS_MS) if ms <= b)


def test_series_fill_every_bucket_and_sum_totals() -> None:
    window = Window(since_ms=10_500, until_ms=40_000, step_ms=10_000)  # buckets 10, 20, 30 s
    rows = [
        StatsRow("svc.a", 10_000, _bin(5.0), requests=3, errors=1, throttles=0, cold_starts=1),
        StatsRow("svc.a", 30_000, _bin(50.0), requests=1, errors=0, throttles=0, cold_starts=0),
        StatsRow("svc.a", 30_000, -1, requests=2, errors=0, throttles=2, cold_starts=0),
        StatsRow("svc.x", 90_000, 0, requests=9, errors=0, throttles=0, cold_starts=0),  # outside
    ]

    body = series(rows, window, ["svc.a", "svc.idle"])

    assert body["buckets"] == [10_000, 20_000, 30_000]
    a = body["functions"]["svc.a"]
    assert a["requests"] == [3, 0, 3]
    assert a["errors"] == [1, 0, 0]
    assert a["throttles"] == [0, 0, 2]
    assert a["cold_starts"] == [1, 0, 0]
    assert a["p50_ms"][1] is None and a["p99_ms"][1] is None
    assert 4.0 < a["p50_ms"][0] <= 5.02  # inside the bin of 5 ms
    assert 40.0 < a["p99_ms"][2] <= 50.2  # throttles are not durations
    assert a["total"] == {
        "requests": 6,
        "errors": 1,
        "throttles": 2,
        "cold_starts": 1,
        "p50_ms": a["total"]["p50_ms"],
        "p99_ms": a["total"]["p99_ms"],
        "rate_per_s": 0.2,  # 6 requests in the 30 s from the first bucket's start
    }
    assert body["functions"]["svc.idle"]["requests"] == [0, 0, 0]
    assert body["functions"]["svc.idle"]["total"]["p50_ms"] is None
    assert "svc.x" not in body["functions"]


@pytest.mark.parametrize(
    ("window", "message"),
    [
        pytest.param(Window(0, 10_000, 0), "step: expected a positive duration", id="zero step"),
        pytest.param(Window(5_000, 5_000, 1_000), "since: expected a time in the past", id="empty"),
        pytest.param(
            Window(0, (MAX_BUCKETS + 1) * 1000, 1000), "use a larger step", id="too many buckets"
        ),
    ],
)
def test_a_bad_window_is_refused_with_a_clear_message(window: Window, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        window.check()
