"""Schedule expressions: parse EventBridge `rate(...)` and `cron(...)`, compute the next run.

Pure: `next_run` takes the time as an argument and reads no clock. All times are epoch
milliseconds, UTC.

- `rate(N unit)` with unit minute|minutes|hour|hours|day|days; "If the value is equal to 1,
  then the unit must be singular. If the value is greater than 1, the unit must be plural"
  (EventBridge "Rate expressions"), so rate(1 hours) and rate(5 hour) are errors.
  `rate(N second|seconds)` is Lamina's development extension, same plural rule.
- `cron(minutes hours day-of-month month day-of-week year)`: see `lamina.events._cron`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lamina.events._cron import CronSpec, next_fire_ms, parse_cron

__all__ = ["Schedule", "next_run", "parse_schedule"]

_UNIT_MS = {"second": 1_000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
_RATE = re.compile(r"^rate\(\s*(?P<value>\S+)\s+(?P<unit>\S+?)\s*\)$")
_CRON = re.compile(r"^cron\((?P<body>.*)\)$")
_EXPECTED = "expected rate(N unit) or cron(minutes hours day-of-month month day-of-week year)"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule expression.

    A rate schedule fires at `anchor_ms + k * period_ms` for k >= 1: it starts at its anchor
    (for EventBridge, when the rule is created) and first fires one period later. Pass the
    anchor the schedule should keep across restarts (e.g. when it was first deployed) so a
    restart does not shift the ticks; the default 0 aligns ticks to the epoch, which puts
    rate(1 hour) on the hour. Cron schedules ignore the anchor.
    """

    expression: str  # the expression as written, stripped of surrounding whitespace
    kind: Literal["rate", "cron"]
    period_ms: int | None = None  # rate only: >= 1000
    anchor_ms: int = 0  # rate only: epoch ms the ticks are aligned to
    cron: CronSpec | None = None  # cron only


def parse_schedule(expression: str, *, anchor_ms: int = 0) -> Schedule:
    """Parse an EventBridge schedule expression; raise ValueError naming what is wrong."""
    text = expression.strip()
    rate = _RATE.match(text)
    if rate:
        period_ms = _rate_period_ms(text, rate.group("value"), rate.group("unit"))
        return Schedule(text, "rate", period_ms=period_ms, anchor_ms=anchor_ms)
    cron = _CRON.match(text)
    if cron:
        return Schedule(text, "cron", cron=parse_cron(text, cron.group("body")))
    raise ValueError(f"{text!r}: {_EXPECTED}")


def _rate_period_ms(text: str, value: str, unit: str) -> int:
    if not value.isdecimal() or int(value) < 1:
        raise ValueError(f"{text}: value {value!r}: expected a positive whole number")
    count = int(value)
    singular = unit.removesuffix("s")
    if singular not in _UNIT_MS:
        raise ValueError(
            f"{text}: unit {unit!r}: expected minute(s), hour(s), day(s) or, for development,"
            " second(s)"
        )
    wanted = singular if count == 1 else singular + "s"
    if unit != wanted:
        raise ValueError(
            f"{text}: unit {unit!r}: expected {wanted!r} (singular when the value is 1, "
            "plural otherwise)"
        )
    return count * _UNIT_MS[singular]


def next_run(schedule: Schedule, after_ms: int) -> int | None:
    """The first fire time strictly after `after_ms` (epoch ms), or None if none remains.

    Rate: anchor + k * period for the smallest k >= 1 past `after_ms`, in O(1).
    Cron: walks months up to the year field's end (2199), never minute by minute; None for
    schedules that cannot fire again, such as cron(0 0 31 2 ? *) or a year in the past.
    Worked example (test "rate ticks stay on the anchor's grid"): anchor 1_000, period 60_000,
    after 130_000 -> k = (130_000 - 1_000) // 60_000 + 1 = 3 -> 181_000.
    """
    if schedule.kind == "rate":
        assert schedule.period_ms is not None
        period = schedule.period_ms
        k = max(1, (after_ms - schedule.anchor_ms) // period + 1)
        return schedule.anchor_ms + k * period
    assert schedule.cron is not None
    return next_fire_ms(schedule.cron, after_ms)
