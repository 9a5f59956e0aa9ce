"""Token buckets: rate and burst, refill, Retry-After rounding. Time is passed in, never read."""

from __future__ import annotations

import pytest

from lamina.clock import FakeClock
from lamina.gateway.ratelimit import TokenBucket, retry_after_header


def test_bucket_refills_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5, burst=5, now_s=clock.monotonic())
    assert [bucket.take(clock.monotonic()) for _ in range(5)] == [0.0] * 5
    assert bucket.take(clock.monotonic()) == pytest.approx(0.2)
    clock.advance(0.2)
    assert bucket.take(clock.monotonic()) == 0.0
    assert bucket.take(clock.monotonic()) > 0


def test_an_idle_bucket_fills_up_to_burst_only() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=3, now_s=clock.monotonic())
    clock.advance(3600)
    allowed = sum(bucket.take(clock.monotonic()) == 0.0 for _ in range(10))
    assert allowed == 3


def test_a_refused_request_takes_no_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=1, now_s=clock.monotonic())
    assert bucket.take(clock.monotonic()) == 0.0
    for _ in range(100):
        assert bucket.take(clock.monotonic()) == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.take(clock.monotonic()) == 0.0


@pytest.mark.parametrize(
    ("seconds", "header"),
    [
        pytest.param(0.2, b"1", id="a fraction of a second is 1"),
        pytest.param(1.0, b"1", id="whole seconds stay"),
        pytest.param(1.01, b"2", id="anything over rounds up"),
        pytest.param(3600.5, b"3601", id="an hour and a bit"),
    ],
)
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, header: bytes) -> None:
    assert retry_after_header(seconds) == header
