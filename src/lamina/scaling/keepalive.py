"""Predictive keep-alive: the hybrid histogram policy of "Serverless in the Wild".

Shahrad et al., USENIX ATC 2020, section 4. Per function, the policy keeps a histogram of idle
times (from the moment the function has nothing running to the next invocation) in 1-minute
bins up to 4 hours, and after each invocation derives two windows from it:

- pre-warm window: how long after going idle to keep no instance at all, then start one;
- keep-alive window: how long to keep that instance (or, with no pre-warm, the instance that
  just ran) before stopping it.

With a representative histogram the pre-warm window is the 5th-percentile idle time lowered by
a 10% margin, and the instance is kept until the 99th-percentile idle time raised by 10%:
with head 30 min and tail 40 min, pre-warm = 27 min and keep-alive = 44 - 27 = 17 min
(`test_pre_warm_and_keep_alive_come_from_the_5th_and_99th_percentile_with_margins`). When the
histogram is not representative (fewer than `min_samples` in-range idle times, or a
coefficient of variation of the bin counts below 2) the policy falls back to a fixed long
keep-alive (4 hours, no pre-warm). When most idle times are beyond the histogram's range, it
forecasts the next one as the mean of the out-of-range idle times seen (the paper fits ARIMA;
the mean is simpler and needs 16 bytes), pre-warms at 85% of the forecast and keeps the
instance for 30% of it (a 15% margin on either side).

Pure: no clock, no I/O. Each function's `IdleHistory` is immutable and about 600 bytes
(`test_the_state_of_one_function_stays_within_one_kilobyte`); `on_arrival` and `on_idle`
return the next one, so the invoker and the simulator replay the same code.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass, field

__all__ = [
    "HybridSpec",
    "IdleHistory",
    "Windows",
    "coefficient_of_variation",
    "on_arrival",
    "on_idle",
    "record_idle",
    "state_size_bytes",
    "windows",
]

_MAX_COUNT = 0xFFFF  # bins are unsigned 16-bit counters


@dataclass(frozen=True, slots=True)
class HybridSpec:
    """Tuning of the hybrid policy; the defaults are the paper's."""

    bin_s: float = 60.0  # width of one histogram bin, seconds; > 0
    bins: int = 240  # number of bins; bins * bin_s is the range (4 h); 1..480 (<= 1 KB state)
    head_percentile: float = 5.0  # idle-time percentile that sets the pre-warm window; 0..100
    tail_percentile: float = 99.0  # idle-time percentile that sets the keep-alive end; 0..100
    margin: float = 0.10  # pre-warm lowered and keep-alive end raised by this fraction; 0..1
    cv_threshold: float = 2.0  # bin-count coefficient of variation below which: fallback
    min_samples: int = 5  # in-range idle times needed before the histogram is used; >= 1
    fallback_keep_alive_s: float = 14400.0  # keep-alive when the histogram is not usable
    oob_share: float = 0.5  # out-of-range share of idle times above which: forecast; 0..1
    forecast_margin: float = 0.15  # pre-warm at (1 - m) x forecast, keep for 2m x forecast

    def __post_init__(self) -> None:
        if not (self.bin_s > 0 and math.isfinite(self.bin_s)):
            raise ValueError(f"HybridSpec.bin_s: expected seconds > 0, got {self.bin_s!r}")
        if not 1 <= self.bins <= 480:
            raise ValueError(f"HybridSpec.bins: expected 1-480, got {self.bins!r}")
        if not 0 <= self.head_percentile <= self.tail_percentile <= 100:
            raise ValueError(
                "HybridSpec: expected 0 <= head_percentile <= tail_percentile <= 100, got "
                f"{self.head_percentile!r} and {self.tail_percentile!r}"
            )
        for name in ("margin", "oob_share", "forecast_margin"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"HybridSpec.{name}: expected 0-1, got {value!r}")
        if self.min_samples < 1:
            raise ValueError(f"HybridSpec.min_samples: expected >= 1, got {self.min_samples!r}")
        if not (self.fallback_keep_alive_s >= 0 and math.isfinite(self.fallback_keep_alive_s)):
            raise ValueError(
                "HybridSpec.fallback_keep_alive_s: expected seconds >= 0, got "
                f"{self.fallback_keep_alive_s!r}"
            )

    @property
    def range_s(self) -> float:
        """Idle times at or beyond this many seconds are out of the histogram's range."""
        return self.bins * self.bin_s


@dataclass(frozen=True, slots=True)
class IdleHistory:
    """One function's idle-time history; `IdleHistory()` is a function never seen idle.

    `counts` holds one little-endian uint16 per bin (empty until the first in-range idle
    time); a bin about to overflow halves every bin, which keeps the shape.
    """

    counts: bytes = b""  # uint16 per bin, little-endian; b"" means all zero
    samples: int = 0  # in-range idle times counted (after halvings, the sum of the bins)
    oob: int = 0  # idle times at or beyond the range
    oob_mean_s: float = 0.0  # mean of the out-of-range idle times, seconds
    idle_since_s: float | None = None  # when the function last went idle; None while busy


@dataclass(frozen=True, slots=True)
class Windows:
    """What to do once a function goes idle: wait `prewarm_s` with no instance (0: keep the
    one that ran), then keep an instance for `keep_alive_s`."""

    prewarm_s: float  # seconds after going idle before an instance is started; >= 0
    keep_alive_s: float  # seconds an instance is then kept idle; >= 0
    reason: str = field(default="", compare=False)  # which rule chose them, for logs

    @property
    def after_use_s(self) -> float:
        """How long to keep the instance that just ran: the keep-alive window without a
        pre-warm window, 0 with one (it is stopped and another started at the pre-warm time)."""
        return self.keep_alive_s if self.prewarm_s == 0 else 0.0

    @property
    def loaded_until_s(self) -> float:
        """Seconds after going idle at which the kept instance is stopped."""
        return self.prewarm_s + self.keep_alive_s


def _counts(history: IdleHistory, spec: HybridSpec) -> array[int]:
    counts = array("H")
    if history.counts:
        counts.frombytes(history.counts)
        if sys.byteorder == "big":
            counts.byteswap()
    else:
        counts.extend(0 for _ in range(spec.bins))
    return counts


def _pack(counts: array[int]) -> bytes:
    if sys.byteorder == "big":
        counts = array("H", counts)
        counts.byteswap()
    return counts.tobytes()


def record_idle(history: IdleHistory, idle_s: float, spec: HybridSpec) -> IdleHistory:
    """Count one idle time of `idle_s` seconds (negative counts as 0).

    In range: bin `floor(idle_s / bin_s)` gains one. Out of range: the out-of-range count and
    the running mean of those idle times are updated.
    """
    idle_s = max(0.0, idle_s)
    if idle_s >= spec.range_s:
        oob = history.oob + 1
        mean = history.oob_mean_s + (idle_s - history.oob_mean_s) / oob
        return IdleHistory(history.counts, history.samples, oob, mean, history.idle_since_s)
    counts = _counts(history, spec)
    index = min(int(idle_s // spec.bin_s), spec.bins - 1)
    samples = history.samples
    if counts[index] == _MAX_COUNT:
        for i, count in enumerate(counts):
            counts[i] = count // 2
        samples = sum(counts)
    counts[index] += 1
    return IdleHistory(
        _pack(counts), samples + 1, history.oob, history.oob_mean_s, history.idle_since_s
    )


def _percentile_bin(counts: array[int], total: int, percentile: float) -> int:
    """The index of the bin holding the `percentile`-th idle time: the first bin whose
    cumulative count reaches `percentile`% of `total` (at least one sample)."""
    needed = max(1.0, total * percentile / 100)
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= needed:
            return index
    return len(counts) - 1


def coefficient_of_variation(counts: array[int]) -> float:
    """Population standard deviation of the bin counts over their mean; 0 for empty bins."""
    n = len(counts)
    mean = sum(counts) / n
    if mean == 0:
        return 0.0
    variance = max(0.0, sum(c * c for c in counts) / n - mean * mean)
    return math.sqrt(variance) / mean


def windows(history: IdleHistory, spec: HybridSpec) -> Windows:
    """The pre-warm and keep-alive windows the history calls for (see the module docstring).

    Rules, first match wins: out-of-range idle times above `oob_share` of all -> forecast;
    fewer than `min_samples` in range -> fallback; CV of the bins below `cv_threshold` ->
    fallback; else the histogram's head and tail. Head is the lower edge of the head
    percentile's bin, tail the upper edge of the tail percentile's bin.
    """
    total = history.samples + history.oob
    if history.oob and history.oob > spec.oob_share * total:
        forecast = history.oob_mean_s
        return Windows(
            forecast * (1 - spec.forecast_margin),
            forecast * 2 * spec.forecast_margin,
            f"forecast: {history.oob} of {total} idle times beyond {spec.range_s:g} s, "
            f"mean {forecast:g} s",
        )
    fallback = Windows(0.0, spec.fallback_keep_alive_s)
    if history.samples < spec.min_samples:
        return Windows(
            fallback.prewarm_s,
            fallback.keep_alive_s,
            f"fallback: {history.samples} idle times, fewer than {spec.min_samples}",
        )
    counts = _counts(history, spec)
    cv = coefficient_of_variation(counts)
    if cv < spec.cv_threshold:
        return Windows(
            fallback.prewarm_s,
            fallback.keep_alive_s,
            f"fallback: histogram not representative (cv {cv:.2f} < {spec.cv_threshold:g})",
        )
    head_s = _percentile_bin(counts, history.samples, spec.head_percentile) * spec.bin_s
    tail_s = (_percentile_bin(counts, history.samples, spec.tail_percentile) + 1) * spec.bin_s
    prewarm_s = head_s * (1 - spec.margin)
    until_s = tail_s * (1 + spec.margin)
    return Windows(
        prewarm_s, until_s - prewarm_s, f"histogram: head {head_s:g} s, tail {tail_s:g} s"
    )


def on_arrival(history: IdleHistory, now_s: float, spec: HybridSpec) -> IdleHistory:
    """An invocation arrives at `now_s`: an idle function records how long it was idle."""
    if history.idle_since_s is None:
        return history
    recorded = record_idle(history, now_s - history.idle_since_s, spec)
    return IdleHistory(recorded.counts, recorded.samples, recorded.oob, recorded.oob_mean_s)


def on_idle(history: IdleHistory, now_s: float, spec: HybridSpec) -> tuple[IdleHistory, Windows]:
    """The function has nothing running from `now_s` on: remember when, and return the windows
    to apply from now."""
    idle = IdleHistory(history.counts, history.samples, history.oob, history.oob_mean_s, now_s)
    return idle, windows(idle, spec)


def state_size_bytes(history: IdleHistory) -> int:
    """Memory one function's history takes: the object plus each field's own object."""
    fields = (history.counts, history.samples, history.oob, history.oob_mean_s)
    size = sys.getsizeof(history) + sum(sys.getsizeof(value) for value in fields)
    if history.idle_since_s is not None:
        size += sys.getsizeof(history.idle_since_s)
    return size
