"""Time series for the dashboard's charts, built from the store's per-bucket counts: requests,
errors, throttles and cold starts per function and bucket, and p50 / p99 durations estimated
from duration histograms. Pure: no I/O, no clock.

Percentiles come from bins whose bounds grow by 10^(1/10) (about 26 %), from 0.1 ms to
1000 s; a percentile is interpolated linearly inside its bin, so it is within one bin's width
of the exact value (worked example in `percentile`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lamina.store.types import StatsRow

__all__ = ["DURATION_BOUNDS_MS", "MAX_BUCKETS", "Window", "percentile", "series"]

# Upper bounds of the duration bins in ms: 0.1, 0.126, 0.158, ... 1_000_000 (ten per decade).
DURATION_BOUNDS_MS: tuple[float, ...] = tuple(float(f"{10 ** (k / 10 - 1):.3g}") for k in range(71))
MAX_BUCKETS = 1000  # points per series at most (e.g. 1 h at a 5 s step is 720)


@dataclass(frozen=True, slots=True)
class Window:
    """The buckets of a chart: [first_ms, until_ms) cut into `step_ms` pieces aligned to
    multiples of `step_ms`, so that successive polls draw the same buckets."""

    since_ms: int
    until_ms: int
    step_ms: int

    @property
    def first_ms(self) -> int:
        return self.since_ms - self.since_ms % self.step_ms

    def buckets(self) -> list[int]:
        return list(range(self.first_ms, self.until_ms, self.step_ms))

    def check(self) -> None:
        """Raise ValueError when the window is empty or has more than MAX_BUCKETS buckets."""
        if self.step_ms <= 0:
            raise ValueError(f"step: expected a positive duration, got {self.step_ms} ms")
        if self.until_ms <= self.since_ms:
            raise ValueError("since: expected a time in the past")
        count = -(-(self.until_ms - self.first_ms) // self.step_ms)
        if count > MAX_BUCKETS:
            raise ValueError(
                f"step: {count} buckets in the window, at most {MAX_BUCKETS}; use a larger step"
            )


def percentile(counts: Sequence[int], q: float, bounds: Sequence[float]) -> float | None:
    """The `q` quantile (0 < q <= 1) of a histogram: `counts[i]` durations in bin i, which
    holds (bounds[i-1], bounds[i]] (bin 0 from 0; the last bin, past the last bound, reports
    the last bound). None when the histogram is empty.

    Example: counts [0, 4, 4] over bounds [1, 2, 4], q = 0.5: rank 4 is the last of bin 1,
    so p50 = 2.0; q = 0.75: rank 6 is half-way through bin 2, so p75 = 2 + 0.5 * (4 - 2) = 3.0
    (tests/unit/dashboard/test_series.py pins both)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i >= len(bounds):
                return bounds[-1]
            low = bounds[i - 1] if i > 0 else 0.0
            return low + (rank - seen) / count * (bounds[i] - low)
        seen += count
    return bounds[-1]


@dataclass(slots=True)
class _Acc:
    """Counts of one function in one bucket (or in the whole window)."""

    requests: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    bins: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BOUNDS_MS) + 1))

    def add(self, row: StatsRow) -> None:
        self.requests += row.requests
        self.errors += row.errors
        self.throttles += row.throttles
        self.cold_starts += row.cold_starts
        if 0 <= row.bin < len(self.bins):
            self.bins[row.bin] += row.requests

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "throttles": self.throttles,
            "cold_starts": self.cold_starts,
            "p50_ms": _round(percentile(self.bins, 0.5, DURATION_BOUNDS_MS)),
            "p99_ms": _round(percentile(self.bins, 0.99, DURATION_BOUNDS_MS)),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_SERIES_KEYS = ("requests", "errors", "throttles", "cold_starts", "p50_ms", "p99_ms")


def series(
    rows: Iterable[StatsRow], window: Window, functions: Iterable[str] = ()
) -> dict[str, Any]:
    """The `GET /stats` body: the bucket start times, and per function one list per measure
    (a point per bucket, zero or null where nothing ran) plus the window's totals. Every
    function in `functions` is present, with or without data.

    {"since_ms", "until_ms", "step_ms", "buckets": [ms, ...],
     "functions": {id: {"requests": [...], "errors": [...], "throttles": [...],
                        "cold_starts": [...], "p50_ms": [...], "p99_ms": [...],
                        "total": {"requests", "errors", "throttles", "cold_starts",
                                  "p50_ms", "p99_ms", "rate_per_s"}}}}"""
    buckets = window.buckets()
    index = {ms: i for i, ms in enumerate(buckets)}
    cells: dict[str, list[_Acc]] = {fid: [_Acc() for _ in buckets] for fid in functions}
    totals: dict[str, _Acc] = {fid: _Acc() for fid in cells}
    for row in rows:
        i = index.get(row.bucket_ms)
        if i is None:
            continue
        if row.function_id not in cells:
            cells[row.function_id] = [_Acc() for _ in buckets]
            totals[row.function_id] = _Acc()
        cells[row.function_id][i].add(row)
        totals[row.function_id].add(row)
    window_s = (window.until_ms - window.first_ms) / 1000
    result: dict[str, Any] = {}
    for fid in sorted(cells):
        summaries = [cell.summary() for cell in cells[fid]]
        entry: dict[str, Any] = {key: [s[key] for s in summaries] for key in _SERIES_KEYS}
        total = totals[fid].summary()
        total["rate_per_s"] = round(total["requests"] / window_s, 3) if window_s > 0 else 0.0
        entry["total"] = total
        result[fid] = entry
    return {
        "since_ms": window.since_ms,
        "until_ms": window.until_ms,
        "step_ms": window.step_ms,
        "buckets": buckets,
        "functions": result,
    }
