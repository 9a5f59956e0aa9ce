"""`parse_schedule` and `next_run` for rate expressions, and schedule-level parse errors."""

from __future__ import annotations

import dataclasses

import pytest

from lamina.events.schedule import Schedule, next_run, parse_schedule

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("expression", "period_ms"),
    [
        pytest.param("rate(1 minute)", MINUTE_MS, id="one minute is singular"),
        pytest.param("rate(5 minutes)", 5 * MINUTE_MS, id="five minutes is plural"),
        pytest.param("rate(1 hour)", HOUR_MS, id="one hour"),
        pytest.param("rate(12 hours)", 12 * HOUR_MS, id="twelve hours"),
        pytest.param("rate(1 day)", DAY_MS, id="one day"),
        pytest.param("rate(7 days)", 7 * DAY_MS, id="seven days"),
        pytest.param("rate(1 second)", 1_000, id="one second, the development extension"),
        pytest.param("rate(30 seconds)", 30_000, id="thirty seconds"),
        pytest.param("  rate( 2  minutes )  ", 2 * MINUTE_MS, id="extra spaces are tolerated"),
    ],
)
def test_rate_periods(expression: str, period_ms: int) -> None:
    schedule = parse_schedule(expression)
    assert schedule.kind == "rate"
    assert schedule.period_ms == period_ms
    assert schedule.expression == expression.strip()
    assert schedule.cron is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        pytest.param(
            "rate(1 minutes)",
            r"unit 'minutes': expected 'minute'",
            id="a value of 1 with a plural unit is rejected",
        ),
        pytest.param(
            "rate(5 hour)",
            r"unit 'hour': expected 'hours'",
            id="a value above 1 with a singular unit is rejected",
        ),
        pytest.param("rate(1 seconds)", r"expected 'second'", id="the plural rule covers seconds"),
        pytest.param(
            "rate(0 minutes)", r"value '0': expected a positive whole number", id="zero is rejected"
        ),
        pytest.param("rate(-1 minutes)", r"value '-1'", id="a negative value is rejected"),
        pytest.param("rate(1.5 hours)", r"value '1.5'", id="a fraction is rejected"),
        pytest.param(
            "rate(2 weeks)",
            r"unit 'weeks': expected minute\(s\), hour\(s\), day\(s\)",
            id="weeks are not a rate unit",
        ),
        pytest.param("rate(5)", r"expected rate\(N unit\) or cron", id="a missing unit"),
        pytest.param(
            "every 5 minutes",
            r"'every 5 minutes': expected rate\(N unit\) or cron",
            id="free text is rejected",
        ),
        pytest.param("at(2024-01-01T00:00:00)", r"expected rate", id="one-time at() is not a rule"),
        pytest.param("", r"expected rate", id="an empty expression is rejected"),
    ],
)
def test_invalid_rate_expressions(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(expression)


@pytest.mark.parametrize(
    ("expression", "anchor_ms", "after_ms", "expected_ms"),
    [
        pytest.param(
            "rate(5 minutes)", 0, 0, 300_000, id="the first tick is one period after the anchor"
        ),
        pytest.param("rate(5 minutes)", 0, 299_999, 300_000, id="just before a tick"),
        pytest.param(
            "rate(5 minutes)",
            0,
            300_000,
            600_000,
            id="a tick equal to after is skipped: strictly after",
        ),
        # Worked example in next_run's docstring: (130_000 - 1_000) // 60_000 + 1 = 3.
        pytest.param(
            "rate(1 minute)", 1_000, 130_000, 181_000, id="rate ticks stay on the anchor's grid"
        ),
        pytest.param(
            "rate(1 minute)",
            1_000_000,
            0,
            1_060_000,
            id="before the anchor the first tick is anchor plus one period",
        ),
        pytest.param(
            "rate(10 seconds)",
            5,
            1_000_000_000_000,
            1_000_000_000_005,
            id="ten-second ticks far from the anchor are found in constant time",
        ),
        pytest.param(
            "rate(1 day)",
            6 * HOUR_MS,
            30 * DAY_MS + 7 * HOUR_MS,
            31 * DAY_MS + 6 * HOUR_MS,
            id="daily ticks keep the anchor's time of day",
        ),
    ],
)
def test_next_run_for_rate(
    expression: str, anchor_ms: int, after_ms: int, expected_ms: int
) -> None:
    assert next_run(parse_schedule(expression, anchor_ms=anchor_ms), after_ms) == expected_ms


def test_the_anchor_can_be_set_after_parsing() -> None:
    schedule = dataclasses.replace(parse_schedule("rate(1 hour)"), anchor_ms=1_234)
    assert next_run(schedule, 0) == HOUR_MS + 1_234


def test_cron_schedules_carry_their_spec_and_no_period() -> None:
    schedule = parse_schedule("cron(0 12 * * ? *)")
    assert isinstance(schedule, Schedule)
    assert (schedule.kind, schedule.period_ms, schedule.expression) == (
        "cron",
        None,
        "cron(0 12 * * ? *)",
    )
    assert schedule.cron is not None
