"""Schedules on the real platform: `rate(1 second)` delivers EventBridge scheduled events, and
two `lamina up` processes sharing one PostgreSQL schema fire each tick exactly once."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import jsonl, lamina_up, run_platform, until, write_app

pytestmark = pytest.mark.timeout(40)

LAMINA = [sys.executable, "-m", "lamina"]


def _functions(events: Path, schedule: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return (
        {"tick": {"handler": "event_targets.record", "events": [{"schedule": schedule}]}},
        {"EVENTS_FILE": str(events)},
    )


async def test_a_rate_schedule_delivers_one_scheduled_event_per_second(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    app = app_dir(*_functions(events, "rate(1 second)"))
    async with run_platform(app, event_poll_s=0.05):
        await until(lambda: len(jsonl(events)) >= 3, "three ticks")
    got = jsonl(events)
    times = [e["event"]["time"] for e in got]
    assert len(set(times)) == len(times), f"a tick fired twice: {times}"
    for entry in got:
        event = entry["event"]
        assert entry["request_id"] == event["id"], "the event id is the request id"
        assert event["detail-type"] == "Scheduled Event"
        assert event["source"] == "aws.events"
        assert event["detail"] == {}
        assert event["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/svc.tick-0"]


async def test_a_schedule_input_is_delivered_as_the_event(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    schedule = {"expression": "rate(1 second)", "input": {"job": "cleanup"}}
    app = app_dir(*_functions(events, schedule))
    async with run_platform(app, event_poll_s=0.05):
        await until(lambda: len(jsonl(events)) >= 1, "one tick")
    assert jsonl(events)[0]["event"] == {"job": "cleanup"}


# -- two processes, one PostgreSQL schema ------------------------------------------------------
async def test_two_processes_sharing_postgresql_fire_each_tick_exactly_once(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    events = tmp_path / "events.jsonl"
    functions, env = _functions(events, "rate(1 second)")
    one = write_app(tmp_path / "one", functions, env)
    two = write_app(tmp_path / "two", functions, env)
    store = ("--store", postgres_schema_url)
    with lamina_up(one, *store) as up1, lamina_up(two, *store) as up2:
        await until(lambda: len(jsonl(events)) >= 5, "five ticks", deadline_s=20)
        for up in (up1, up2):
            up.process.send_signal(signal.SIGTERM)
        codes = [up1.process.wait(15), up2.process.wait(15)]
    assert codes == [0, 0]
    got = jsonl(events)
    ids = [e["request_id"] for e in got]
    times = [e["event"]["time"] for e in got]
    assert len(set(ids)) == len(ids), f"a tick fired twice: {sorted(times)}"
    assert len(set(times)) == len(times)
    assert len(got) >= 5
