"""Token buckets for the gateway's rate limits: per route and per API key. Pure: the caller
passes the time, so a test moves it instead of waiting.

A bucket holds up to `burst` tokens and gains `rate` tokens per second; a request takes one.
Worked example (pinned by `test_bucket_refills_at_rate` in tests/unit/gateway/test_ratelimit.py):
rate 5/s, burst 5: five requests at t=0 pass, the sixth is refused with retry-after 0.2 s
(one token takes 1/5 s to grow); at t=0.2 one more passes.
"""

from __future__ import annotations

import math

from lamina.manifest.models import RateLimitSpec

__all__ = ["TokenBucket", "retry_after_header"]


class TokenBucket:
    """`take(now_s)` returns 0.0 when a token was taken, else the seconds until one is there."""

    __slots__ = ("_last_s", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now_s: float) -> None:
        self.rate = rate  # tokens per second, > 0
        self.burst = float(burst)  # capacity, >= 1
        self._tokens = float(burst)  # starts full
        self._last_s = now_s

    @classmethod
    def of(cls, spec: RateLimitSpec, now_s: float) -> TokenBucket:
        return cls(spec.rate, spec.burst, now_s)

    def take(self, now_s: float) -> float:
        elapsed = now_s - self._last_s
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._last_s = now_s
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def retry_after_header(seconds: float) -> bytes:
    """`Retry-After` is whole seconds (RFC 9110): round up, and never say 0."""
    return str(max(1, math.ceil(seconds - 1e-9))).encode()
