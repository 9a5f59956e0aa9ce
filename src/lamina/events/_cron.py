"""EventBridge cron grammar: parse six fields into a `CronSpec`, find the next fire time.

Fields, as "Cron expressions reference" (EventBridge user guide) lists them:

    minutes       0-59                 , - * /
    hours         0-23                 , - * /
    day-of-month  1-31                 , - * ? / L W
    month         1-12 or JAN-DEC      , - * /
    day-of-week   1-7 or SUN-SAT       , - * ? L #      (1 = SUN ... 7 = SAT)
    year          1970-2199            , - * /

Semantics pinned down here (EventBridge's grammar comes from Quartz, which we follow where the
AWS page is silent; each choice is pinned by a test in tests/unit/events/test_events_cron.py):
- Exactly one of day-of-month and day-of-week is `?`.
- `a/n` starts at `a` and steps by `n` to the field's maximum; `*/n` starts at the minimum;
  `a-b/n` steps within the range. A range whose end is below its start wraps around the
  field (`22-2` in hours is 22, 23, 0, 1, 2; `FRI-MON` is FRI, SAT, SUN, MON), as in Quartz.
- Day-of-month `L` is the last day of the month, `LW` the last weekday (Mon-Fri) of the month,
  `nW` the weekday nearest day n without leaving the month (1W on a Saturday is Monday the
  3rd; 31W on a Sunday is Friday the 29th); `nW` past the month's end never fires that month.
- Day-of-week `L` alone means 7 (Saturday, every week); `nL` is the last day-n of the month
  (`5L` = last Thursday); `n#k` is the k-th day-n of the month (`3#2` = second Tuesday), and
  months without a k-th one are skipped. `L`, `LW`, `nW`, `nL` and `n#k` stand alone in their
  field: the AWS page says "3#1,6#3" is invalid because it is two expressions.
- Month and day names are case-insensitive. All times are UTC.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "CronError",
    "CronSpec",
    "DayOfMonth",
    "DayOfWeek",
    "month_days",
    "next_fire_ms",
    "parse_cron",
]

MINUTE_MS = 60_000
DAY_MS = 86_400_000
_EPOCH = dt.date(1970, 1, 1)

_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_FIELD_NAMES = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_NUMBER = re.compile(r"^\d+$")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # as the AWS page names it, used in error messages
    low: int
    high: int
    names: dict[str, int] = field(default_factory=dict)  # JAN -> 1, SUN -> 1
    allowed: str = ""  # the "expected ..." part of error messages


_MINUTES = _Field("minutes", 0, 59, allowed="0-59 with , - * /")
_HOURS = _Field("hours", 0, 23, allowed="0-23 with , - * /")
_DOM = _Field("day-of-month", 1, 31, allowed="1-31 with , - * /, '?', 'L', 'LW' or 'nW'")
_MONTH = _Field("month", 1, 12, _MONTHS, allowed="1-12 or JAN-DEC with , - * /")
_DOW = _Field("day-of-week", 1, 7, _DAYS, allowed="1-7, SUN-SAT, '?', 'L' or '#'")
_YEAR = _Field("year", 1970, 2199, allowed="1970-2199 with , - * /")


@dataclass(frozen=True, slots=True)
class DayOfMonth:
    """The day-of-month field when it is not `?`."""

    kind: Literal["days", "last", "last_weekday", "nearest_weekday"]
    days: frozenset[int] = frozenset()  # kind "days": 1-31 (days past the month's end never fire)
    day: int = 0  # kind "nearest_weekday": the n of `nW`, 1-31


@dataclass(frozen=True, slots=True)
class DayOfWeek:
    """The day-of-week field when it is not `?`; days are 1 (SUN) to 7 (SAT)."""

    kind: Literal["days", "last_of_month", "nth"]
    days: frozenset[int] = frozenset()  # kind "days"
    day: int = 0  # kinds "last_of_month" (`nL`) and "nth" (`n#k`): the weekday n, 1-7
    nth: int = 0  # kind "nth": k, 1-5


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A parsed cron expression; sets are sorted tuples for bisecting."""

    minutes_of_day: tuple[int, ...]  # every hour*60 + minute that fires, sorted
    months: frozenset[int]  # 1-12
    years: tuple[int, ...]  # sorted, within 1970-2199
    day_of_month: DayOfMonth | None  # None when the field is `?`
    day_of_week: DayOfWeek | None  # None when the field is `?`


class CronError(ValueError):
    """A cron expression is malformed; the message names the field and what it allows."""


def parse_cron(expression: str, body: str) -> CronSpec:
    """Parse `body`, the text between `cron(` and `)`; `expression` is quoted in errors."""
    fields = body.split()
    if len(fields) != 6:
        raise CronError(
            f"{expression}: expected 6 fields ({' '.join(_FIELD_NAMES)}), got {len(fields)}"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise CronError(
            f"{expression}: exactly one of day-of-month ({dom!r}) and day-of-week ({dow!r}) "
            "must be '?'"
        )
    minutes = _parse_plain(expression, _MINUTES, minute)
    hours = _parse_plain(expression, _HOURS, hour)
    return CronSpec(
        minutes_of_day=tuple(h * 60 + m for h in sorted(hours) for m in sorted(minutes)),
        months=frozenset(_parse_plain(expression, _MONTH, month)),
        years=tuple(sorted(_parse_plain(expression, _YEAR, year))),
        day_of_month=None if dom == "?" else _parse_dom(expression, dom),
        day_of_week=None if dow == "?" else _parse_dow(expression, dow),
    )


# --- parsing ------------------------------------------------------------------------------


def _fail(expression: str, spec: _Field, text: str, detail: str = "") -> CronError:
    extra = f" ({detail})" if detail else ""
    return CronError(f"{expression}: {spec.name} {text!r}: expected {spec.allowed}{extra}")


def _value(expression: str, spec: _Field, text: str, whole: str) -> int:
    upper = text.upper()
    if upper in spec.names:
        return spec.names[upper]
    if not _NUMBER.match(text):
        raise _fail(expression, spec, whole)
    number = int(text)
    if not spec.low <= number <= spec.high:
        raise _fail(expression, spec, whole, f"{number} is out of range")
    return number


def _parse_plain(expression: str, spec: _Field, text: str) -> set[int]:
    """Parse a comma list of `*`, `n`, `a-b`, each optionally `/step`, into a set of values."""
    values: set[int] = set()
    for part in text.split(","):
        values |= _parse_item(expression, spec, part, text)
    return values


def _parse_item(expression: str, spec: _Field, part: str, whole: str) -> set[int]:
    base, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not _NUMBER.match(step_text) or not 1 <= int(step_text) <= spec.high - spec.low:
            raise _fail(
                expression, spec, whole, f"step must be 1-{spec.high - spec.low}, got {step_text!r}"
            )
        step = int(step_text)
    if base == "*":
        start, end = spec.low, spec.high
    elif "-" in base:
        first, _, last = base.partition("-")
        start = _value(expression, spec, first, whole)
        end = _value(expression, spec, last, whole)
    else:
        start = _value(expression, spec, base, whole)
        end = spec.high if slash else start  # `a/n` runs from a to the field's maximum
    return set(_walk(spec, start, end, step))


def _walk(spec: _Field, start: int, end: int, step: int) -> list[int]:
    """Values from start to end by step; when end < start the range wraps past the maximum."""
    span = spec.high - spec.low + 1
    length = (end - start) % span  # 22-2 in hours: (2 - 22) % 24 = 4 steps past 22
    return [spec.low + (start - spec.low + i) % span for i in range(0, length + 1, step)]


def _parse_dom(expression: str, text: str) -> DayOfMonth:
    upper = text.upper()
    if upper == "L":
        return DayOfMonth("last")
    if upper == "LW":
        return DayOfMonth("last_weekday")
    if upper.endswith("W"):
        day = upper[:-1]
        if not _NUMBER.match(day):
            raise _fail(expression, _DOM, text, "'W' follows a single day, as in 15W")
        return DayOfMonth("nearest_weekday", day=_value(expression, _DOM, day, text))
    if "L" in upper or "W" in upper:
        raise _fail(expression, _DOM, text, "'L', 'LW' and 'nW' stand alone")
    return DayOfMonth("days", days=frozenset(_parse_plain(expression, _DOM, text)))


def _parse_dow(expression: str, text: str) -> DayOfWeek:
    upper = text.upper()
    if upper == "L":
        return DayOfWeek("days", days=frozenset({7}))  # `L` alone is 7: every Saturday
    if "#" in upper:
        day, _, nth = upper.partition("#")
        if "," in text or not _NUMBER.match(nth) or not 1 <= int(nth) <= 5:
            raise _fail(expression, _DOW, text, "'#' takes one day and 1-5, as in 3#2")
        return DayOfWeek("nth", day=_value(expression, _DOW, day, text), nth=int(nth))
    if upper.endswith("L"):
        day = upper[:-1]
        if "," in day or "-" in day or "/" in day:
            raise _fail(expression, _DOW, text, "'L' follows a single day, as in 5L")
        return DayOfWeek("last_of_month", day=_value(expression, _DOW, day, text))
    if "L" in upper:  # no day name contains an L, so this is a misplaced `L`
        raise _fail(expression, _DOW, text, "'L' stands alone or follows one day, as in 5L")
    if "/" in text:
        raise _fail(expression, _DOW, text, "'/' is not allowed in day-of-week")
    return DayOfWeek("days", days=frozenset(_parse_plain(expression, _DOW, text)))


# --- matching -----------------------------------------------------------------------------


def _aws_weekday(date: dt.date) -> int:
    """1 (SUN) to 7 (SAT); Python's weekday() is 0 (MON) to 6 (SUN)."""
    return (date.weekday() + 1) % 7 + 1


def _weekday_of(first_dow: int, day: int) -> int:
    """AWS weekday of `day` in a month whose 1st falls on AWS weekday `first_dow`."""
    return (first_dow - 1 + day - 1) % 7 + 1


def _nearest_weekday(day: int, ndays: int, first_dow: int) -> int | None:
    """Day-of-month of the weekday nearest `day`, never leaving the month."""
    if day > ndays:
        return None
    weekday = _weekday_of(first_dow, day)
    if weekday == 7:  # Saturday: Friday before, or Monday after when the 1st is a Saturday
        return day - 1 if day > 1 else day + 2
    if weekday == 1:  # Sunday: Monday after, or Friday before when it is the last day
        return day + 1 if day < ndays else day - 2
    return day


def _last_weekday(ndays: int, first_dow: int) -> int:
    weekday = _weekday_of(first_dow, ndays)
    return ndays - {7: 1, 1: 2}.get(weekday, 0)


def _dom_days(spec: DayOfMonth, ndays: int, first_dow: int) -> set[int]:
    if spec.kind == "last":
        return {ndays}
    if spec.kind == "last_weekday":
        return {_last_weekday(ndays, first_dow)}
    if spec.kind == "nearest_weekday":
        day = _nearest_weekday(spec.day, ndays, first_dow)
        return set() if day is None else {day}
    return {d for d in spec.days if d <= ndays}


def _dow_days(spec: DayOfWeek, ndays: int, first_dow: int) -> set[int]:
    first = 1 + (spec.day - first_dow) % 7  # first day-of-month that is weekday spec.day
    if spec.kind == "nth":
        day = first + 7 * (spec.nth - 1)
        return {day} if day <= ndays else set()
    if spec.kind == "last_of_month":
        return {first + 7 * ((ndays - first) // 7)}
    return {d for d in range(1, ndays + 1) if _weekday_of(first_dow, d) in spec.days}


def month_days(spec: CronSpec, year: int, month: int) -> tuple[int, ...]:
    """The days of `month` in `year` on which `spec` fires, sorted."""
    ndays = calendar.monthrange(year, month)[1]
    first_dow = _aws_weekday(dt.date(year, month, 1))
    if spec.day_of_month is not None:
        days = _dom_days(spec.day_of_month, ndays, first_dow)
    else:
        assert spec.day_of_week is not None  # parse_cron guarantees exactly one is `?`
        days = _dow_days(spec.day_of_week, ndays, first_dow)
    return tuple(sorted(days))


def next_fire_ms(spec: CronSpec, after_ms: int) -> int | None:
    """First fire time strictly after `after_ms` (epoch ms, UTC), or None if there is none.

    Walks months, not minutes: at most 12 x 230 months (the year field ends at 2199), each
    costing one day-set computation, so an impossible schedule such as cron(0 0 31 2 ? *)
    returns None after ~230 cheap steps.
    """
    start_ms = (after_ms // MINUTE_MS + 1) * MINUTE_MS  # cron fires on whole minutes
    start_date = _EPOCH + dt.timedelta(days=start_ms // DAY_MS)
    start_minute = (start_ms % DAY_MS) // MINUTE_MS
    first_year = bisect.bisect_left(spec.years, start_date.year)
    for year in spec.years[first_year:]:
        for month in range(1, 13):
            if month not in spec.months or (year, month) < (start_date.year, start_date.month):
                continue
            for day in month_days(spec, year, month):
                date = dt.date(year, month, day)
                if date < start_date:
                    continue
                floor = start_minute if date == start_date else 0
                index = bisect.bisect_left(spec.minutes_of_day, floor)
                if index < len(spec.minutes_of_day):
                    days = (date - _EPOCH).days
                    return days * DAY_MS + spec.minutes_of_day[index] * MINUTE_MS
    return None
