"""The scheduler on a real store (SQLite and PostgreSQL, the shared `store`/`new_store`
fixtures) with a fake clock (`clock`, FakeClock() at its defaults): each tick fires
once, two schedulers sharing a store fire it once between them, a restart resumes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from lamina.clock import FakeClock
from lamina.events.schedule import parse_schedule
from lamina.events.scheduler import (
    ScheduledTarget,
    Scheduler,
    latest_due,
    schedule_targets,
    tick_request_id,
)
from lamina.manifest.models import FunctionSpec, HttpTrigger, ScheduleTrigger
from lamina.store import Store

pytestmark = pytest.mark.timeout(20)

MINUTE = 60_000
START_MS = 1_700_001_000_000  # FakeClock's wall time at start: a whole minute (xx:30:00)


# -- helpers ----------------------------------------------------------------------------------
@dataclass
class Submitted:
    events: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    async def __call__(self, function_id: str, payload: bytes, request_id: str) -> None:
        self.events.append((function_id, orjson.loads(payload), request_id))

    def ticks(self) -> list[str]:
        return [event["time"] for _, event, _ in self.events]


def _target(expression: str, index: int = 0, input: Any = None) -> ScheduledTarget:
    return ScheduledTarget(f"svc.job#{index}", "svc.job", parse_schedule(expression), input)


async def _settled(*schedulers: Scheduler) -> None:
    """Wait until every schedule of every scheduler sleeps until its next tick."""
    async with asyncio.timeout(5):
        while any(s.sleeping < len(s.targets) for s in schedulers):
            await asyncio.sleep(0.001)


async def _step(clock: FakeClock, seconds: float, *schedulers: Scheduler) -> None:
    await _settled(*schedulers)
    clock.advance(seconds)
    await _settled(*schedulers)


# -- tests ------------------------------------------------------------------------------------
async def test_a_rate_schedule_fires_each_tick_once_with_the_scheduled_event(
    store: Store, clock: FakeClock
) -> None:
    submitted = Submitted()
    scheduler = Scheduler(store, [_target("rate(1 minute)")], submitted, clock, owner="p1")
    scheduler.start()
    try:
        await _step(clock, 59.9, scheduler)
        assert submitted.events == [], "nothing fires before the first tick"
        await _step(clock, 0.1, scheduler)
        await _step(clock, 30, scheduler)
        await _step(clock, 30, scheduler)
    finally:
        await scheduler.stop()

    first, second = START_MS + MINUTE, START_MS + 2 * MINUTE
    assert [rid for _, _, rid in submitted.events] == [
        tick_request_id("svc.job#0", first),
        tick_request_id("svc.job#0", second),
    ]
    function_id, event, request_id = submitted.events[0]
    assert function_id == "svc.job"
    assert event == {
        "version": "0",
        "id": request_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "2023-11-14T22:31:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/svc.job-0"],
        "detail": {},
    }
    assert await store.last_tick("svc.job#0") == second


async def test_two_schedulers_sharing_a_store_fire_each_tick_exactly_once(
    new_store: Callable[[], Awaitable[Store]], clock: FakeClock
) -> None:
    submitted = Submitted()
    targets = [_target("rate(1 minute)", 0), _target("rate(2 minutes)", 1)]
    one = Scheduler(await new_store(), targets, submitted, clock, owner="p1")
    two = Scheduler(await new_store(), targets, submitted, clock, owner="p2")
    one.start()
    two.start()
    try:
        for _ in range(6):
            await _step(clock, 60, one, two)
    finally:
        await one.stop()
        await two.stop()

    request_ids = [rid for _, _, rid in submitted.events]
    assert len(request_ids) == 6 + 3, "six 1-minute ticks and three 2-minute ticks"
    assert len(set(request_ids)) == len(request_ids), "no tick fired twice"
    assert one.fired + two.fired == 9


async def test_a_cron_schedule_fires_on_its_fire_times(store: Store, clock: FakeClock) -> None:
    submitted = Submitted()
    scheduler = Scheduler(store, [_target("cron(0/5 * * * ? *)")], submitted, clock, owner="p1")
    scheduler.start()
    try:
        for _ in range(12):  # 12 minutes from xx:30:00
            await _step(clock, 60, scheduler)
    finally:
        await scheduler.stop()

    assert submitted.ticks() == ["2023-11-14T22:35:00Z", "2023-11-14T22:40:00Z"]


async def test_a_restart_resumes_after_the_last_tick_firing_only_the_latest_missed_one(
    new_store: Callable[[], Awaitable[Store]], clock: FakeClock
) -> None:
    submitted = Submitted()
    target = _target("rate(1 minute)")
    before = Scheduler(await new_store(), [target], submitted, clock, owner="p1")
    before.start()
    await _step(clock, 60, before)
    await before.stop()
    assert submitted.ticks() == ["2023-11-14T22:31:00Z"]

    clock.advance(3.5 * 60)  # down for 3.5 minutes: 22:32, 22:33 and 22:34 are missed
    after = Scheduler(await new_store(), [target], submitted, clock, owner="p2")
    after.start()
    try:
        await _settled(after)
        assert submitted.ticks()[1:] == ["2023-11-14T22:34:00Z"], "only the latest missed tick"
        await _step(clock, 30, after)
    finally:
        await after.stop()

    assert submitted.ticks() == [
        "2023-11-14T22:31:00Z",
        "2023-11-14T22:34:00Z",
        "2023-11-14T22:35:00Z",
    ]


async def test_a_restart_within_the_same_period_fires_nothing_again(
    new_store: Callable[[], Awaitable[Store]], clock: FakeClock
) -> None:
    submitted = Submitted()
    target = _target("rate(1 minute)")
    before = Scheduler(await new_store(), [target], submitted, clock, owner="p1")
    before.start()
    await _step(clock, 60, before)
    await before.stop()
    clock.advance(20)
    after = Scheduler(await new_store(), [target], submitted, clock, owner="p2")
    after.start()
    try:
        await _step(clock, 20, after)
        assert len(submitted.events) == 1
        await _step(clock, 20, after)
    finally:
        await after.stop()

    assert submitted.ticks() == ["2023-11-14T22:31:00Z", "2023-11-14T22:32:00Z"]


async def test_a_trigger_input_is_sent_instead_of_the_scheduled_event(
    store: Store, clock: FakeClock
) -> None:
    submitted = Submitted()
    target = _target("rate(10 seconds)", input={"report": "daily", "n": [1, 2]})
    scheduler = Scheduler(store, [target], submitted, clock, owner="p1")
    scheduler.start()
    try:
        await _step(clock, 10, scheduler)
    finally:
        await scheduler.stop()

    assert [event for _, event, _ in submitted.events] == [{"report": "daily", "n": [1, 2]}]


async def test_a_failed_submit_is_retried_with_the_same_request_id(
    store: Store, clock: FakeClock
) -> None:
    calls: list[str] = []

    async def flaky(function_id: str, payload: bytes, request_id: str) -> None:
        calls.append(request_id)
        if len(calls) == 1:
            raise OSError("store briefly unavailable")

    scheduler = Scheduler(store, [_target("rate(1 minute)")], flaky, clock, owner="p1")
    scheduler.start()
    try:
        await _settled(scheduler)
        clock.advance(60)
        async with asyncio.timeout(5):
            while len(calls) < 1:
                await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        clock.advance(0.2)  # the first retry delay
        async with asyncio.timeout(5):
            while len(calls) < 2:
                await asyncio.sleep(0.001)
    finally:
        await scheduler.stop()

    assert calls == [tick_request_id("svc.job#0", START_MS + MINUTE)] * 2
    assert scheduler.fired == 1


# -- pure pieces ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "after", "now", "expected"),
    [
        ("rate(1 minute)", 60_000, 250_000, 240_000),
        ("rate(1 minute)", 60_000, 119_999, None),
        ("rate(1 minute)", 60_000, 120_000, 120_000),
        ("cron(0/5 * * * ? *)", 0, 16 * MINUTE, 15 * MINUTE),
        ("cron(0 12 * * ? *)", 0, 3 * 86_400_000, 2 * 86_400_000 + 12 * 3_600_000),
    ],
    ids=[
        "a restart fires only the latest missed tick",
        "nothing is due before the next tick",
        "a tick exactly at now is due",
        "cron: the latest missed five-minute mark",
        "cron: after a long outage, the latest noon",
    ],
)
def test_latest_due(expression: str, after: int, now: int, expected: int | None) -> None:
    assert latest_due(parse_schedule(expression), after, now) == expected


def test_schedule_targets_are_numbered_by_trigger_position() -> None:
    fn = FunctionSpec(
        name="job",
        service="svc",
        handler="m.h",
        events=(
            HttpTrigger(route="GET /x"),
            ScheduleTrigger(expression="rate(5 minutes)"),
            ScheduleTrigger(expression="cron(0 12 * * ? *)", input={"a": 1}),
        ),
    )
    targets = schedule_targets([fn])
    assert [(t.schedule_id, t.schedule.expression, t.input) for t in targets] == [
        ("svc.job#1", "rate(5 minutes)", None),
        ("svc.job#2", "cron(0 12 * * ? *)", {"a": 1}),
    ]
