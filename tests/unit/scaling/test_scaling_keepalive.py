"""The hybrid histogram keep-alive policy against hand-computed cases: percentiles and margins,
the fallbacks (too few idle times, a flat histogram), the forecast for idle times beyond
4 hours, and the bound on one function's state."""

from __future__ import annotations

import random
import struct
from array import array

import pytest

from lamina.scaling.keepalive import (
    HybridSpec,
    IdleHistory,
    Windows,
    coefficient_of_variation,
    on_arrival,
    on_idle,
    record_idle,
    state_size_bytes,
    windows,
)

SPEC = HybridSpec()  # the paper's: 240 one-minute bins, 5th/99th percentiles, 10% margins
MIN = 60.0


def history_of(*idle_s: float, spec: HybridSpec = SPEC) -> IdleHistory:
    history = IdleHistory()
    for idle in idle_s:
        history = record_idle(history, idle, spec)
    return history


def pair(result: Windows) -> tuple[float, float]:
    return result.prewarm_s, result.keep_alive_s


def bins(history: IdleHistory) -> dict[int, int]:
    counts = struct.unpack(f"<{len(history.counts) // 2}H", history.counts)
    return {i: c for i, c in enumerate(counts) if c}


def test_idle_times_land_in_one_minute_bins_and_four_hours_is_out_of_range() -> None:
    history = history_of(0, 59.9, 60, 14399, 14400, 20000)
    assert bins(history) == {0: 2, 1: 1, 239: 1}
    assert (history.samples, history.oob) == (4, 2)
    assert history.oob_mean_s == pytest.approx(17200)


def test_pre_warm_and_keep_alive_come_from_the_5th_and_99th_percentile_with_margins() -> None:
    # 20 idle times: one at 30.5 min, 18 at 35 min, one at 39.5 min. The 5th percentile is
    # the 1st idle time (bin 30, head 30 min); the 99th needs 19.8 of 20, reached in bin 39,
    # whose upper edge is 40 min. Pre-warm 0.9 x 30 = 27 min; kept until 1.1 x 40 = 44 min.
    history = history_of(30.5 * MIN, *[35 * MIN] * 18, 39.5 * MIN)
    result = windows(history, SPEC)
    assert pair(result) == pytest.approx((27 * MIN, 17 * MIN))
    assert result.loaded_until_s == pytest.approx(44 * MIN)
    assert result.after_use_s == 0.0, "with a pre-warm window the instance that ran goes now"
    assert result.reason == "histogram: head 1800 s, tail 2400 s"


def test_idle_times_under_a_minute_mean_no_pre_warm_and_a_66_second_keep_alive() -> None:
    result = windows(history_of(*[5.0] * 10), SPEC)
    assert pair(result) == pytest.approx((0.0, 66.0))
    assert result.after_use_s == pytest.approx(66.0)


@pytest.mark.parametrize(
    ("filled_bins", "expected"),
    [
        # k equally filled bins of 240: cv^2 = 240/k - 1. k = 48 gives exactly 2 (kept):
        # the 5th percentile (2.4 of 48) is in bin 2, head 2 min, pre-warm 108 s; the 99th
        # (47.52) in bin 47, tail 48 min, kept until 3168 s. k = 49 gives 1.97: fallback.
        (48, (108.0, 3168.0 - 108.0)),
        (49, (0.0, 14400.0)),
    ],
    ids=["48 filled bins have cv 2 and are used", "49 filled bins have cv 1.97: fallback"],
)
def test_a_flat_histogram_falls_back_to_the_four_hour_keep_alive(
    filled_bins: int, expected: tuple[float, float]
) -> None:
    history = history_of(*(i * MIN + 1 for i in range(filled_bins)))
    assert pair(windows(history, SPEC)) == pytest.approx(expected)


def test_the_coefficient_of_variation_is_of_the_bin_counts() -> None:
    counts = bins(history_of(30.5 * MIN, *[35 * MIN] * 18, 39.5 * MIN))
    assert counts == {30: 1, 35: 18, 39: 1}
    full = array("H", [0] * 240)
    for index, count in counts.items():
        full[index] = count
    # mean 20/240; E[c^2] = 326/240; cv = sqrt(1.35139) / 0.08333 = 13.9499
    assert coefficient_of_variation(full) == pytest.approx(13.9499, abs=1e-4)


def test_fewer_than_min_samples_idle_times_fall_back_and_the_fifth_uses_the_histogram() -> None:
    four = history_of(*[10 * MIN + 1] * 4)
    fallback = windows(four, SPEC)
    assert pair(fallback) == (0.0, 14400.0)
    assert fallback.reason == "fallback: 4 idle times, fewer than 5"
    five = windows(record_idle(four, 10 * MIN + 1, SPEC), SPEC)
    assert pair(five) == pytest.approx((540.0, 726.0 - 540.0))


def test_out_of_range_idle_times_that_dominate_are_forecast_by_their_mean() -> None:
    # 5 h and 7 h out of range, 10 min in range: 2 of 3 beyond 4 h; forecast 6 h = 21600 s.
    # Pre-warm at 85% (18360 s), keep for 2 x 15% (6480 s).
    history = history_of(5 * 3600, 10 * MIN, 7 * 3600)
    result = windows(history, SPEC)
    assert (result.prewarm_s, result.keep_alive_s) == pytest.approx((18360.0, 6480.0))
    assert result.reason.startswith("forecast: 2 of 3 idle times beyond 14400 s")


def test_out_of_range_idle_times_that_are_half_or_less_do_not_forecast() -> None:
    history = history_of(5 * 3600, 7 * 3600, 10 * MIN, 10 * MIN)
    assert pair(windows(history, SPEC)) == (0.0, 14400.0)  # 2 in range: too few


def test_a_full_bin_halves_every_bin_and_keeps_counting() -> None:
    counts = [0] * 240
    counts[3], counts[7] = 65535, 3
    full = IdleHistory(struct.pack("<240H", *counts), samples=65538)
    after = record_idle(full, 3 * MIN, SPEC)
    assert bins(after) == {3: 32768, 7: 1}
    assert after.samples == 32769


def test_arrival_records_the_idle_time_since_the_function_went_idle() -> None:
    idle, first = on_idle(IdleHistory(), 100.0, SPEC)
    assert idle.idle_since_s == 100.0
    assert first.reason == "fallback: 0 idle times, fewer than 5"
    busy = on_arrival(idle, 700.0, SPEC)
    assert busy.idle_since_s is None
    assert bins(busy) == {10: 1}
    assert on_arrival(busy, 900.0, SPEC) == busy, "a busy function records nothing"


def test_the_state_of_one_function_stays_within_one_kilobyte() -> None:
    rng = random.Random(5)
    history = IdleHistory()
    for _ in range(5000):
        history = record_idle(history, rng.uniform(0, 6 * 3600), SPEC)
    history, _ = on_idle(history, 123456.0, SPEC)
    assert len(history.counts) == 480, "240 bins of 2 bytes"
    assert history.oob > 0 and history.idle_since_s is not None
    assert state_size_bytes(history) <= 1024


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bins": 0}, "HybridSpec.bins: expected 1-480, got 0"),
        ({"margin": 1.5}, "HybridSpec.margin: expected 0-1, got 1.5"),
        ({"head_percentile": 50, "tail_percentile": 10}, "head_percentile <= tail_percentile"),
        ({"min_samples": 0}, "HybridSpec.min_samples: expected >= 1, got 0"),
    ],
    ids=["no bins", "margin above 1", "head above tail", "no samples needed"],
)
def test_a_spec_out_of_range_is_refused_naming_the_field(
    fields: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        HybridSpec(**fields)  # type: ignore[arg-type]
