"""`next_run` for cron expressions as a table, and cron parse errors.

Every expected time was worked out by hand from the calendar in the comment beside it.
Calendars used (UTC):
    Jan 2024: Mon 1, 8, 15, 22, 29; Tue 2, 9; Thu 4, 11, 18, 25; Fri 5; Sat 6.
    Feb 2024 (leap): Thu 1, 8, 15, 22, 29; Mon 5, 12, 19, 26; Tue 6, 13, 20, 27.
    Mar 2024: Fri 1; Sun 31.         Apr 2024: Mon 1, 8, 15, 22, 29.
    Jun 2024: Sat 1, Sat 15.         Aug 2024: Sat 31.        Sep 2024: Sun 1, Sun 15.
    Feb 2025: Sat 1 (28 days).       Aug 2025: Sun 31.        Nov 2025: Sun 30.
    Dec 2025: Wed 31.                Feb 2026: Sat 28.
    Feb 2028 (leap): Tue 1, 8, 15, 22, 29; Fri 4, 11, 18, 25.
"""

from __future__ import annotations

import datetime as dt

import pytest

from lamina.events.schedule import next_run, parse_schedule


def ms(iso: str) -> int:
    """'2024-01-01T10:00' (UTC) -> epoch ms; seconds and '.fff' are optional."""
    return int(dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC).timestamp() * 1000)


def iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M")


CASES = [
    # --- plain fields, strictly after, rollovers ---
    pytest.param(
        "cron(0 10 * * ? *)",
        "2024-01-01T09:59",
        "2024-01-01T10:00",
        id="a daily 10:00 schedule fires at 10:00 the same day",
    ),
    pytest.param(
        "cron(0 10 * * ? *)",
        "2024-01-01T10:00",
        "2024-01-02T10:00",
        id="a fire time equal to after is skipped: next_run is strictly after",
    ),
    pytest.param(
        "cron(0 10 * * ? *)",
        "2024-01-01T10:00:00.001",
        "2024-01-02T10:00",
        id="one millisecond past the fire time waits for the next day",
    ),
    pytest.param(
        "cron(15 12 * * ? *)",
        "2024-12-31T12:15",
        "2025-01-01T12:15",
        id="the last fire of a year rolls over into January 1st",
    ),
    pytest.param(
        "cron(* * * * ? *)",
        "2024-12-31T23:59",
        "2025-01-01T00:00",
        id="every minute rolls over minute, hour, day, month and year at once",
    ),
    pytest.param(
        "cron(0 8 1 * ? *)",
        "2024-01-15T00:00",
        "2024-02-01T08:00",
        id="the 1st of the month after mid-January is February 1st",
    ),
    pytest.param(
        "cron(0 0 31 * ? *)",
        "2024-04-01T00:00",
        "2024-05-31T00:00",
        id="day 31 skips April, which has 30 days",
    ),
    pytest.param(
        "cron(0 0 29 2 ? *)",
        "2024-03-01T00:00",
        "2028-02-29T00:00",
        id="February 29th after 2024 waits four years for the leap year 2028",
    ),
    pytest.param(
        "cron(0 0 29 2 ? *)",
        "2024-01-01T00:00",
        "2024-02-29T00:00",
        id="February 29th exists in 2024",
    ),
    # --- , - * / ---
    pytest.param(
        "cron(0/15 * * * ? *)",
        "2024-01-01T10:07",
        "2024-01-01T10:15",
        id="0/15 in minutes fires at 0, 15, 30 and 45",
    ),
    pytest.param(
        "cron(1/10 * * * ? *)",
        "2024-01-01T10:01",
        "2024-01-01T10:11",
        id="1/10 in minutes fires at 1, 11, 21 as the AWS page describes",
    ),
    pytest.param(
        "cron(*/20 * * * ? *)",
        "2024-01-01T10:41",
        "2024-01-01T11:00",
        id="*/20 steps from the field minimum and rolls into the next hour",
    ),
    pytest.param(
        "cron(10-30/10 * * * ? *)",
        "2024-01-01T10:31",
        "2024-01-01T11:10",
        id="a stepped range 10-30/10 stops at 30",
    ),
    pytest.param(
        "cron(0,30 9-17 ? * MON-FRI *)",
        "2024-01-05T17:30",
        "2024-01-08T09:00",
        id="office hours after Friday 17:30 resume Monday 09:00",
    ),
    pytest.param(
        "cron(0 22-2 * * ? *)",
        "2024-01-01T02:00",
        "2024-01-01T22:00",
        id="an hour range 22-2 wraps past midnight and skips 3 to 21",
    ),
    pytest.param(
        "cron(0 22-2 * * ? *)",
        "2024-01-01T23:00",
        "2024-01-02T00:00",
        id="an hour range 22-2 includes midnight",
    ),
    pytest.param(
        "cron(0 0 ? * FRI-MON *)",
        "2024-01-01T00:00",
        "2024-01-05T00:00",
        id="a day-of-week range FRI-MON wraps: after Monday the next is Friday",
    ),
    pytest.param(
        "cron(0 0 ? * 6-2 *)",
        "2024-01-06T00:00",
        "2024-01-07T00:00",
        id="a numeric day-of-week range 6-2 is FRI, SAT, SUN, MON",
    ),
    pytest.param(
        "cron(0 0 1 JAN,JUL ? *)",
        "2024-02-01T00:00",
        "2024-07-01T00:00",
        id="month names in a list",
    ),
    pytest.param(
        "cron(0 0 1 */3 ? *)",
        "2024-04-01T00:00",
        "2024-07-01T00:00",
        id="*/3 in months is January, April, July, October",
    ),
    pytest.param(
        "cron(0 0 1/10 * ? *)",
        "2024-02-21T00:00",
        "2024-03-01T00:00",
        id="1/10 in days gives 31, which February lacks, so March 1st follows",
    ),
    pytest.param(
        "cron(0 0 1/10 * ? *)",
        "2024-01-21T00:00",
        "2024-01-31T00:00",
        id="1/10 in days includes the 31st in January",
    ),
    pytest.param(
        "cron(0 0 ? * mon *)",
        "2024-01-01T00:00",
        "2024-01-08T00:00",
        id="day names are case-insensitive",
    ),
    # --- year ---
    pytest.param(
        "cron(0 0 1 1 ? 2030)",
        "2024-06-01T00:00",
        "2030-01-01T00:00",
        id="a single year far ahead is found without scanning minutes",
    ),
    pytest.param(
        "cron(0 0 1 1 ? 2030)",
        "2030-01-01T00:00",
        None,
        id="a single year already past returns None",
    ),
    pytest.param(
        "cron(0 0 1 1 ? 2025/5)",
        "2025-01-01T00:00",
        "2030-01-01T00:00",
        id="2025/5 in years steps to 2030",
    ),
    pytest.param(
        "cron(0 0 1 1 ? 2199)",
        "2199-01-01T00:00",
        None,
        id="nothing fires past 2199, the year field's end",
    ),
    pytest.param(
        "cron(0 0 31 2 ? *)",
        "2024-01-01T00:00",
        None,
        id="February 31st never exists and returns None",
    ),
    # --- L in day-of-month ---
    pytest.param(
        "cron(0 0 L * ? *)",
        "2024-02-01T00:00",
        "2024-02-29T00:00",
        id="L in February 2024 is the 29th",
    ),
    pytest.param(
        "cron(0 0 L * ? *)",
        "2025-02-01T00:00",
        "2025-02-28T00:00",
        id="L in February 2025 is the 28th",
    ),
    pytest.param(
        "cron(0 0 L 2 ? *)",
        "2025-03-01T00:00",
        "2026-02-28T00:00",
        id="L in February only, after February 2025, is February 28th 2026",
    ),
    pytest.param(
        "cron(0 0 L 2 ? 2028)",
        "2024-01-01T00:00",
        "2028-02-29T00:00",
        id="L in February 2028 is the 29th",
    ),
    pytest.param(
        "cron(0 0 L * ? *)",
        "2028-02-29T00:00",
        "2028-03-31T00:00",
        id="L after February 29th 2028 is March 31st",
    ),
    # --- W in day-of-month ---
    pytest.param(
        "cron(0 9 15W * ? *)",
        "2024-01-01T00:00",
        "2024-01-15T09:00",
        id="15W on a Monday is the 15th itself",
    ),
    pytest.param(
        "cron(0 9 15W * ? *)",
        "2024-06-01T00:00",
        "2024-06-14T09:00",
        id="15W on a Saturday moves back to Friday the 14th",
    ),
    pytest.param(
        "cron(0 9 15W * ? *)",
        "2024-09-01T00:00",
        "2024-09-16T09:00",
        id="15W on a Sunday moves on to Monday the 16th",
    ),
    pytest.param(
        "cron(0 9 1W * ? *)",
        "2024-06-01T00:00",
        "2024-06-03T09:00",
        id="1W on a Saturday moves to Monday the 3rd, not back into May",
    ),
    pytest.param(
        "cron(0 9 1W * ? *)",
        "2024-09-01T00:00",
        "2024-09-02T09:00",
        id="1W on a Sunday moves to Monday the 2nd",
    ),
    pytest.param(
        "cron(0 9 1W * ? *)",
        "2025-02-01T00:00",
        "2025-02-03T09:00",
        id="1W on Saturday February 1st 2025 is Monday the 3rd",
    ),
    pytest.param(
        "cron(0 9 31W * ? *)",
        "2025-08-01T00:00",
        "2025-08-29T09:00",
        id="31W on a Sunday moves back to Friday the 29th, not into September",
    ),
    pytest.param(
        "cron(0 9 31W * ? *)",
        "2024-03-01T00:00",
        "2024-03-29T09:00",
        id="31W on Sunday March 31st 2024 is Friday the 29th",
    ),
    pytest.param(
        "cron(0 9 31W * ? *)",
        "2025-11-01T00:00",
        "2025-12-31T09:00",
        id="31W skips November, which has no 31st, to Wednesday December 31st",
    ),
    pytest.param(
        "cron(0 12 LW * ? *)",
        "2024-08-01T00:00",
        "2024-08-30T12:00",
        id="LW when the 31st is a Saturday is Friday the 30th",
    ),
    pytest.param(
        "cron(0 12 LW * ? *)",
        "2024-03-01T00:00",
        "2024-03-29T12:00",
        id="LW when the 31st is a Sunday is Friday the 29th",
    ),
    pytest.param(
        "cron(0 12 LW * ? *)",
        "2026-02-01T00:00",
        "2026-02-27T12:00",
        id="LW when February 28th is a Saturday is Friday the 27th",
    ),
    pytest.param(
        "cron(0 12 LW * ? *)",
        "2025-12-01T00:00",
        "2025-12-31T12:00",
        id="LW when the last day is a Wednesday is that day",
    ),
    # --- L and # in day-of-week ---
    pytest.param(
        "cron(0 0 ? * L *)",
        "2024-01-01T00:00",
        "2024-01-06T00:00",
        id="L alone in day-of-week is 7, every Saturday",
    ),
    pytest.param(
        "cron(0 0 ? * 5L *)",
        "2024-01-01T00:00",
        "2024-01-25T00:00",
        id="5L is the last Thursday: January 25th 2024",
    ),
    pytest.param(
        "cron(0 0 ? * 5L *)",
        "2024-01-26T00:00",
        "2024-02-29T00:00",
        id="5L in February 2024 is the 29th, a fifth Thursday",
    ),
    pytest.param(
        "cron(0 0 ? * FRIL *)",
        "2028-02-01T00:00",
        "2028-02-25T00:00",
        id="FRIL, the last Friday of February 2028, is the 25th",
    ),
    pytest.param(
        "cron(0 10 ? * 3#2 *)",
        "2024-01-01T00:00",
        "2024-01-09T10:00",
        id="3#2 is the second Tuesday: January 9th 2024",
    ),
    pytest.param(
        "cron(0 10 ? * 3#2 *)",
        "2024-01-09T10:00",
        "2024-02-13T10:00",
        id="3#2 after January's is the second Tuesday of February, the 13th",
    ),
    pytest.param(
        "cron(0 0 ? * 2#5 *)",
        "2024-01-01T00:00",
        "2024-01-29T00:00",
        id="2#5, the fifth Monday of January 2024, is the 29th",
    ),
    pytest.param(
        "cron(0 0 ? * 2#5 *)",
        "2024-01-29T00:00",
        "2024-04-29T00:00",
        id="2#5 skips February and March 2024, which have four Mondays",
    ),
    pytest.param(
        "cron(0 0 ? FEB TUE#5 *)",
        "2024-01-01T00:00",
        "2028-02-29T00:00",
        id="the fifth Tuesday of February first occurs in 2028",
    ),
    pytest.param(
        "cron(0 0 ? * 1#1 *)",
        "2024-03-31T00:00",
        "2024-04-07T00:00",
        id="1#1 after Sunday March 31st is the first Sunday of April, the 7th",
    ),
]


@pytest.mark.parametrize(("expression", "after", "expected"), CASES)
def test_next_run_for_cron(expression: str, after: str, expected: str | None) -> None:
    assert iso(next_run(parse_schedule(expression), ms(after))) == expected


def test_consecutive_runs_walk_the_schedule() -> None:
    # Mondays and Fridays at 09:00 from Monday January 1st 2024.
    schedule = parse_schedule("cron(0 9 ? * MON,FRI *)")
    runs, at = [], ms("2024-01-01T00:00")
    for _ in range(4):
        nxt = next_run(schedule, at)
        assert nxt is not None
        runs.append(iso(nxt))
        at = nxt
    assert runs == [
        "2024-01-01T09:00",
        "2024-01-05T09:00",
        "2024-01-08T09:00",
        "2024-01-12T09:00",
    ]


def test_times_before_1970_find_the_first_run_in_1970() -> None:
    assert iso(next_run(parse_schedule("cron(0 0 1 1 ? *)"), -5)) == "1970-01-01T00:00"


ERRORS = [
    pytest.param("cron(0 10 * * ?)", r"expected 6 fields .*got 5", id="five fields are rejected"),
    pytest.param(
        "cron(0 10 * * * *)",
        r"exactly one of day-of-month \('\*'\) and day-of-week",
        id="star in both day fields is rejected",
    ),
    pytest.param(
        "cron(0 10 ? * ? *)",
        r"exactly one of day-of-month",
        id="question mark in both day fields is rejected",
    ),
    pytest.param(
        "cron(0 10 1 * MON *)",
        r"exactly one of day-of-month",
        id="values in both day fields are rejected",
    ),
    pytest.param(
        "cron(60 10 * * ? *)",
        r"minutes '60': expected 0-59 .*60 is out of range",
        id="minute 60 is out of range",
    ),
    pytest.param("cron(0 24 * * ? *)", r"hours '24': expected 0-23", id="hour 24 is rejected"),
    pytest.param("cron(0 0 0 * ? *)", r"day-of-month '0': expected 1-31", id="day 0 is rejected"),
    pytest.param("cron(0 0 32 * ? *)", r"day-of-month '32'", id="day 32 is rejected"),
    pytest.param(
        "cron(0 0 1 13 ? *)", r"month '13': expected 1-12 or JAN-DEC", id="month 13 is rejected"
    ),
    pytest.param("cron(0 0 1 JANX ? *)", r"month 'JANX'", id="an unknown month name is rejected"),
    pytest.param(
        "cron(0 0 ? * MOX *)",
        r"^cron\(0 0 \? \* MOX \*\): day-of-week 'MOX': expected 1-7, SUN-SAT, '\?', 'L' or '#'$",
        id="an unknown day name names the field and what it allows",
    ),
    pytest.param("cron(0 0 ? * 8 *)", r"day-of-week '8'", id="day-of-week 8 is rejected"),
    pytest.param("cron(0 0 ? * 0 *)", r"day-of-week '0'", id="day-of-week 0 is rejected"),
    pytest.param(
        "cron(0 0 1 1 ? 1969)", r"year '1969': expected 1970-2199", id="year 1969 is rejected"
    ),
    pytest.param("cron(0 0 1 1 ? 2200)", r"year '2200'", id="year 2200 is rejected"),
    pytest.param("cron(? 0 1 * ? *)", r"minutes '\?'", id="a question mark in minutes"),
    pytest.param("cron(0 0 1 L ? *)", r"month 'L'", id="L in the month field is rejected"),
    pytest.param("cron(0 0 ? * 2W *)", r"day-of-week '2W'", id="W in day-of-week is rejected"),
    pytest.param("cron(0 0 1#2 * ? *)", r"day-of-month '1#2'", id="# in day-of-month"),
    pytest.param("cron(0 0 ? * 3#6 *)", r"day-of-week '3#6'.*1-5", id="#6 is rejected"),
    pytest.param("cron(0 0 ? * 3#0 *)", r"day-of-week '3#0'", id="#0 is rejected"),
    pytest.param(
        "cron(0 0 ? * 3#1,6#3 *)",
        r"day-of-week '3#1,6#3'",
        id="two # expressions are rejected as the AWS page says",
    ),
    pytest.param(
        "cron(0 0 ? * 1/2 *)",
        r"'/' is not allowed in day-of-week",
        id="a step in day-of-week is rejected",
    ),
    pytest.param("cron(0 0 ? * 2,5L *)", r"day-of-week '2,5L'", id="nL in a list is rejected"),
    pytest.param("cron(0 0 ? * L2 *)", r"day-of-week 'L2'", id="a misplaced L in day-of-week"),
    pytest.param("cron(0/0 * * * ? *)", r"step must be 1-59", id="a zero step is rejected"),
    pytest.param("cron(*/60 * * * ? *)", r"step must be 1-59", id="a step of 60 minutes"),
    pytest.param("cron(0 0 L-2 * ? *)", r"day-of-month 'L-2'", id="Quartz's L-n offset"),
    pytest.param("cron(0 0 1-5W * ? *)", r"day-of-month '1-5W'", id="W after a range"),
    pytest.param("cron(0 0 1,LW * ? *)", r"day-of-month '1,LW'", id="LW in a list"),
    pytest.param("cron(0 0 1,,2 * ? *)", r"day-of-month '1,,2'", id="an empty list item"),
    pytest.param("cron(0 0 5- * ? *)", r"day-of-month '5-'", id="an open range"),
]


@pytest.mark.parametrize(("expression", "message"), ERRORS)
def test_invalid_cron_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(expression)
