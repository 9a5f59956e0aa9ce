"""`backoff_ms`: capped exponential delays, full jitter with a seeded Random, validation."""

from __future__ import annotations

import random

import pytest

from lamina.events.backoff import backoff_ms


@pytest.mark.parametrize(
    ("attempt", "base_ms", "cap_ms", "expected"),
    [
        pytest.param(1, 100, 1_000, 100, id="the first retry waits the base"),
        pytest.param(2, 100, 1_000, 200, id="the second retry doubles it"),
        pytest.param(3, 100, 1_000, 400, id="the third retry doubles again"),
        pytest.param(4, 100, 1_000, 800, id="the fourth retry waits 800 ms"),
        pytest.param(5, 100, 1_000, 1_000, id="the fifth retry is capped at 1000 ms"),
        pytest.param(6, 100, 1_000, 1_000, id="later retries stay at the cap"),
        pytest.param(
            10_000, 100, 1_000, 1_000, id="a huge attempt number is capped, not overflowed"
        ),
        pytest.param(3, 1_000, 100, 100, id="a cap below the base wins"),
        pytest.param(3, 0, 1_000, 0, id="a zero base means no delay"),
        pytest.param(3, 100, 0, 0, id="a zero cap means no delay"),
        pytest.param(2, 10, 60_000, 20, id="sub-second bases work for tests"),
    ],
)
def test_delays_without_jitter(attempt: int, base_ms: int, cap_ms: int, expected: int) -> None:
    assert backoff_ms(attempt, base_ms=base_ms, cap_ms=cap_ms, rng=None) == expected


def test_full_jitter_draws_uniformly_from_zero_to_the_delay() -> None:
    rng = random.Random(7)
    draws = [backoff_ms(3, base_ms=100, cap_ms=10_000, rng=rng) for _ in range(2_000)]
    assert all(0 <= d <= 400 for d in draws)
    assert min(draws) < 20 and max(draws) > 380  # the whole window, not half of it
    assert 170 < sum(draws) / len(draws) < 230  # mean of uniform(0, 400) is 200


def test_full_jitter_is_reproducible_with_a_seed() -> None:
    first = [backoff_ms(n, base_ms=50, cap_ms=5_000, rng=random.Random(42)) for n in range(1, 8)]
    again = [backoff_ms(n, base_ms=50, cap_ms=5_000, rng=random.Random(42)) for n in range(1, 8)]
    assert first == again


def test_jitter_never_exceeds_the_cap() -> None:
    rng = random.Random(1)
    assert all(backoff_ms(40, base_ms=100, cap_ms=1_000, rng=rng) <= 1_000 for _ in range(500))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"attempt": 0}, r"attempt: expected >= 1, got 0", id="attempt 0 is rejected"),
        pytest.param({"attempt": -1}, r"attempt: expected >= 1", id="a negative attempt"),
        pytest.param(
            {"attempt": True},
            r"attempt: expected an integer, got True",
            id="a boolean attempt is rejected",
        ),
        pytest.param({"attempt": 1.5}, r"attempt: expected an integer", id="a float attempt"),
        pytest.param({"base_ms": -1}, r"base_ms: expected >= 0, got -1", id="a negative base"),
        pytest.param({"base_ms": 0.5}, r"base_ms: expected an integer", id="a float base"),
        pytest.param({"cap_ms": -5}, r"cap_ms: expected >= 0, got -5", id="a negative cap"),
        pytest.param(
            {"cap_ms": "100"},
            r"cap_ms: expected an integer, got '100'",
            id="a string cap is rejected",
        ),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"attempt": 1, "base_ms": 100, "cap_ms": 1_000, "rng": None}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        backoff_ms(**args)  # type: ignore[arg-type]
