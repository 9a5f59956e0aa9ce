"""Retry delays: capped exponential backoff with optional "full jitter". Pure; no clock.

Full jitter, `uniform(0, min(cap, base * 2**(attempt-1)))`, is the variant the AWS
Architecture Blog post "Exponential Backoff And Jitter" (Marc Brooker, 2015) recommends: in
its simulation of contending clients it needed the fewest calls and about the least total
time, because spreading retries over the whole window breaks up the synchronized bursts that
plain exponential backoff (and "equal jitter", which keeps half the delay fixed) still leaves.
"""

from __future__ import annotations

import random

__all__ = ["backoff_ms"]


def backoff_ms(attempt: int, *, base_ms: int, cap_ms: int, rng: random.Random | None) -> int:
    """Delay in ms before retry number `attempt` (1 for the first retry).

    Without `rng` the delay is the deterministic `min(cap_ms, base_ms * 2**(attempt-1))`:
    base 100, cap 1_000 gives 100, 200, 400, 800, 1_000, 1_000, ... With `rng` it is drawn
    uniformly from 0..delay, both ends included (full jitter). A cap below the base wins (the
    delay never exceeds `cap_ms`). Huge attempts are safe: the exponent is bounded before it
    is computed.
    """
    _check_int("attempt", attempt, 1)
    _check_int("base_ms", base_ms, 0)
    _check_int("cap_ms", cap_ms, 0)
    if base_ms == 0 or cap_ms == 0:
        return 0
    # 2**(attempt-1) needs no more bits than cap_ms has once it exceeds cap_ms / base_ms.
    shift = min(attempt - 1, cap_ms.bit_length())
    delay = min(cap_ms, base_ms << shift)
    return delay if rng is None else rng.randint(0, delay)


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"backoff_ms: {name}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"backoff_ms: {name}: expected >= {minimum}, got {value}")
