"""Invocations sent behind the one an instance runs, when a short function has no instance
free and can start no more (see FunctionPool._may_send_behind): each still runs alone, with
its own time limit and billed duration from its own start, and an instance that dies fails
only the invocation it was running; the one behind runs on another instance.

The platform runs on a fake clock that stands still unless the test moves it: every
invocation then took no time, and the pool sends behind as soon as it has seen SHORT_STREAK
short invocations in a row."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from handlers.ops import Gate
from harness import client_for, run_platform

from lamina.clock import FakeClock
from lamina.control import Platform
from lamina.invoker.pool import SHORT_MS, SHORT_STREAK


def _app(app_dir: Callable[..., Path], **settings: Any) -> Path:
    fn = {"handler": "ops.behind", "events": [{"http": "POST /fn"}], "max_instances": 1}
    return app_dir({"fn": {**fn, **settings}})


def _status(platform: Platform) -> dict[str, Any]:
    assert platform.invoker is not None
    [entry] = [f for f in platform.invoker.status() if f["id"] == "svc.fn"]
    return entry


async def _until(platform: Platform, key: str, value: int) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while (status := _status(platform))[key] != value:
            await asyncio.sleep(0.01)
    return status


async def _short_streak(client: httpx.AsyncClient) -> int:
    """Run the invocations that show the function is short; the instance's pid."""
    pids = set()
    for _ in range(SHORT_STREAK):
        response = await client.post("/fn", json={})
        assert response.status_code == 200
        pids.add(response.json()["pid"])
    [pid] = pids
    return pid


async def _records(platform: Platform, *request_ids: str) -> list[dict[str, Any]]:
    assert platform.recorder is not None
    await platform.recorder.flush()
    auth = {"Authorization": f"Bearer {platform.token}"}
    records = []
    async with httpx.AsyncClient(base_url=platform.admin_url, timeout=10) as admin:
        for rid in request_ids:
            reply = await admin.get("/invocations", params={"request_id": rid}, headers=auth)
            assert reply.status_code == 200, reply.text
            records += reply.json()
    return records


@dataclass
class _Run:
    platform: Platform
    client: httpx.AsyncClient
    gate: Gate
    later: Gate  # a second gate, for a test that holds invocations twice
    tasks: asyncio.TaskGroup
    pid: int  # the instance that ran the short streak

    def post(self, **body: Any) -> asyncio.Task[httpx.Response]:
        """A request in the background (the task group cancels it if the test fails)."""
        return self.tasks.create_task(self.client.post("/fn", json=body))

    async def one_waits(self, gate: Gate) -> dict[str, Any]:
        """An invocation held by `gate`, and another sent while it runs: the platform's status
        once that one waits; both are answered before this returns."""
        running = self.post(gate=gate.port)
        await gate.arrivals(1)
        waiting = self.post()
        queued = await _until(self.platform, "queued", 1)
        gate.open()
        await running, await waiting
        return queued


@contextlib.asynccontextmanager
async def _short_function(app: Path, clock: FakeClock | None = None) -> AsyncIterator[_Run]:
    """The platform on a standing fake clock, its function past SHORT_STREAK short
    invocations."""
    async with (
        run_platform(app, clock=clock or FakeClock()) as platform,
        client_for(platform) as client,
        Gate() as gate,
        Gate() as later,
        asyncio.TaskGroup() as tasks,
    ):
        yield _Run(platform, client, gate, later, tasks, await _short_streak(client))


async def test_when_the_instance_dies_the_invocation_sent_behind_runs_on_a_new_one(
    app_dir: Callable[..., Path],
) -> None:
    async with _short_function(_app(app_dir, max_queued=2)) as run:
        crashing = run.post(gate=run.gate.port, crash=True)
        await run.gate.arrivals(1)
        behind = run.post()
        waiting = await _until(run.platform, "queued_behind", 1)
        run.gate.open()
        crashed, served = await crashing, await behind
        after = _status(run.platform)
        records = await _records(
            run.platform, crashed.headers["x-amzn-requestid"], served.headers["x-amzn-requestid"]
        )
    assert waiting["queued"] == 1, "an invocation sent behind another counts as queued"
    assert waiting["in_flight"] == 1, "and not as running"
    assert crashed.status_code == 502
    assert served.status_code == 200, "the crash must fail only the invocation it ran"
    assert served.json()["pid"] != run.pid
    assert after["errors"] == 1 and after["invocations"] == SHORT_STREAK + 2
    assert after["queued"] == after["queued_behind"] == 0
    assert [r["status"] for r in records] == ["crashed", "ok"], "one record per invocation"


async def test_when_the_running_invocation_times_out_the_one_behind_runs_on_a_new_one(
    app_dir: Callable[..., Path],
) -> None:
    async with _short_function(_app(app_dir, timeout=1)) as run:
        hanging = run.post(hang=True)
        await _until(run.platform, "busy", 1)
        behind = run.post()
        await _until(run.platform, "queued_behind", 1)
        timed_out, served = await hanging, await behind
    assert timed_out.status_code == 504
    assert served.status_code == 200
    assert served.json()["pid"] != run.pid
    assert served.json()["remaining_ms"] > 500, "its own 1 s limit, from its own start"


async def test_an_invocation_sent_behind_gets_its_time_limit_and_billing_from_its_start(
    app_dir: Callable[..., Path],
) -> None:
    clock = FakeClock()
    async with _short_function(_app(app_dir, timeout=2), clock) as run:
        running = run.post(gate=run.gate.port)
        await run.gate.arrivals(1)
        behind = run.post()
        await _until(run.platform, "queued_behind", 1)
        # The invocation in front runs for a second (of real time, which the instance's
        # clock counts, and of the platform's clock, which bills it) before it ends.
        await asyncio.sleep(1.0)
        clock.advance(1.0)
        run.gate.open()
        first, second = await running, await behind
        records = await _records(
            run.platform, first.headers["x-amzn-requestid"], second.headers["x-amzn-requestid"]
        )
    assert first.status_code == second.status_code == 200
    assert first.json()["pid"] == second.json()["pid"] == run.pid, "sent behind, one instance"
    assert second.json()["remaining_ms"] > 1700, "2 s from its start, not from when it was sent"
    [ran, waited] = records
    assert ran["duration_ms"] >= 1000
    assert waited["duration_ms"] < 100, "the second it waited behind is not billed"


async def test_no_invocation_is_sent_behind_one_running_longer_than_a_short_one(
    app_dir: Callable[..., Path],
) -> None:
    clock = FakeClock()
    async with _short_function(_app(app_dir, max_queued=2), clock) as run:
        running = run.post(gate=run.gate.port)
        await run.gate.arrivals(1)
        clock.advance(SHORT_MS / 1000 * 2)  # it has run for longer than a short invocation
        waiting = run.post()
        queued = await _until(run.platform, "queued", 1)
        run.gate.open()
        await running, await waiting
        # That long invocation ended the streak: the next one waits in the pool's queue too.
        queued_again = await run.one_waits(run.later)
    assert queued["queued_behind"] == 0
    assert queued_again["queued_behind"] == 0


async def test_with_max_queued_0_nothing_is_sent_behind(app_dir: Callable[..., Path]) -> None:
    async with _short_function(_app(app_dir, max_queued=0)) as run:
        running = run.post(gate=run.gate.port)
        await run.gate.arrivals(1)
        throttled = await run.client.post("/fn", json={})
        run.gate.open()
        served = await running
    assert throttled.status_code == 429, "max_queued 0: no invocation waits, not even behind"
    assert served.status_code == 200


async def test_a_crash_ends_the_short_streak(app_dir: Callable[..., Path]) -> None:
    async with _short_function(_app(app_dir, max_queued=2)) as run:
        crashing = run.post(gate=run.gate.port, crash=True)
        await run.gate.arrivals(1)
        run.gate.open()
        crashed = await crashing  # quick, but its instance did not survive it
        queued = await run.one_waits(run.later)
    assert crashed.status_code == 502
    assert queued["queued_behind"] == 0, "no sending behind a function whose instances crash"


async def test_instances_say_how_long_the_handler_ran_which_lets_a_fast_function_be_batched(
    app_dir: Callable[..., Path],
) -> None:
    """Batches (FunctionPool._may_batch) hold no more than BATCH_BUDGET_MS of the handler's
    recent runs (the second longest), which the instances measure and report with each
    result: until they have, the pool batches nothing."""
    async with _short_function(_app(app_dir, max_instances=4, max_queued=100)) as run:
        assert run.platform.invoker is not None
        pool = run.platform.invoker.pool("svc.fn")
        assert pool._slow_ms < 1.0, "a handler that returns at once ran well under 1 ms"
        replies = await asyncio.gather(*(run.client.post("/fn", json={}) for _ in range(12)))
    assert [r.status_code for r in replies] == [200] * 12
    assert len({r.json()["request_id"] for r in replies}) == 12, "each ran once, as itself"
    assert all(r.json()["remaining_ms"] > 2000 for r in replies), "each from its own start"
