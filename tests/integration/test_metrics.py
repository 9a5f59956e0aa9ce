"""`GET /metrics` on the real platform: right after the requests, without waiting for the
recorder's flush, the counters equal what was sent; instances, queue depth and dead letters
are read at scrape time. The exposition is read back with prometheus_client's parser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from handlers.ops import Gate
from harness import client_for, run_platform, send_event, until
from prometheus_client.parser import text_string_to_metric_families

from lamina.control import Platform

pytestmark = pytest.mark.timeout(60)

INVOKE_ROUTE = "POST /2015-03-31/functions/{FunctionName}/invocations"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(platform: Platform) -> Samples:
    async with httpx.AsyncClient(base_url=platform.admin_url, timeout=10) as admin:
        response = await admin.get(
            "/metrics", headers={"Authorization": f"Bearer {platform.token}"}
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def invocations(samples: Samples, function: str, status: str, trigger: str) -> float | None:
    return value(
        samples, "lamina_invocations_total", function=function, status=status, trigger=trigger
    )


def requests(samples: Samples, route: str, status: int) -> float | None:
    return value(samples, "lamina_gateway_requests_total", route=route, status=str(status))


async def test_metrics_counters_match_the_requests_sent(app_dir: Callable[..., Path]) -> None:
    app = app_dir(
        {
            "hello": {"handler": "basic.hello", "events": [{"http": "GET /hello"}]},
            "fail": {"handler": "ops.fail", "events": [{"http": "POST /fail"}]},
            "gated": {
                "handler": "ops.gated",
                "events": [{"http": "POST /gated"}],
                "max_instances": 1,
                "max_queued": 0,
            },
            "doomed": {"handler": "ops.fail", "async": {"max_retries": 0}},
            "worker": {"handler": "ops.pid", "events": [{"queue": "jobs"}]},
        }
    )
    async with (
        run_platform(app, event_poll_s=0.05) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        admin = httpx.AsyncClient(
            base_url=platform.admin_url,
            headers={"Authorization": f"Bearer {platform.token}"},
            timeout=10,
        )
        async with admin:
            # A message delayed past the test stays in the queue; the other one is consumed.
            for body, delay in (("later", 900), ("now", 0)):
                sent = await admin.post(
                    "/queues/jobs/messages", json={"body": body, "delay_seconds": delay}
                )
                assert sent.status_code == 201, sent.text
            unauthorized = await admin.get("/metrics", headers={"Authorization": "Bearer no"})
        await send_event(platform, "svc.doomed", {"n": 1})  # dead-letters after one attempt

        statuses = [(await client.get("/hello")).status_code for _ in range(5)]
        statuses += [(await client.post("/fail", json={})).status_code for _ in range(3)]
        statuses.append((await client.get("/nowhere")).status_code)
        invoked = await client.post("/2015-03-31/functions/svc.hello/invocations", json={})
        busy = tasks.create_task(client.post("/gated", json={"gate": gate.port}))
        await gate.arrivals(1)
        throttled = await client.post("/gated", json={"gate": gate.port})
        while_busy = await scrape(platform)
        gate.open()
        served = await busy

        # The event and the queue message are delivered in the background: wait for their
        # outcomes, which the scrape shows as soon as the invocations have finished.
        async def delivered() -> Samples | None:
            samples = await scrape(platform)
            done = (
                value(samples, "lamina_dead_letters", source="async:svc.doomed") == 1
                and invocations(samples, "svc.worker", "ok", "queue") == 1
            )
            return samples if done else None

        await until(delivered, "the dead letter and the queue delivery")
        samples = await scrape(platform)  # right away: nothing flushed, nothing waited for
        assert platform.recorder is not None
        await platform.recorder.flush()
        async with httpx.AsyncClient(base_url=platform.admin_url, timeout=10) as admin:
            hello_records = (
                await admin.get(
                    "/invocations",
                    params={"function": "svc.hello"},
                    headers={"Authorization": f"Bearer {platform.token}"},
                )
            ).json()

    assert unauthorized.status_code == 401
    assert statuses == [200] * 5 + [502] * 3 + [404]
    assert (invoked.status_code, throttled.status_code, served.status_code) == (200, 429, 200)

    assert value(while_busy, "lamina_instances", function="svc.gated", state="live") == 1
    assert value(while_busy, "lamina_instances", function="svc.gated", state="busy") == 1
    assert value(samples, "lamina_instances", function="svc.gated", state="busy") == 0
    assert value(samples, "lamina_instances", function="svc.hello", state="live") == 1

    assert invocations(samples, "svc.hello", "ok", "http") == 5
    assert invocations(samples, "svc.hello", "ok", "invoke") == 1
    assert invocations(samples, "svc.fail", "error", "http") == 3
    assert invocations(samples, "svc.gated", "ok", "http") == 1
    assert invocations(samples, "svc.gated", "throttled", "http") == 1
    assert invocations(samples, "svc.doomed", "error", "event") == 1
    assert value(samples, "lamina_throttles_total", function="svc.gated") == 1
    for function, ran in (("svc.hello", 6), ("svc.fail", 3), ("svc.gated", 1)):
        count = "lamina_invocation_duration_seconds_count"
        assert value(samples, count, function=function) == ran
        assert value(samples, "lamina_cold_starts_total", function=function) == 1
        assert value(samples, "lamina_init_duration_seconds_count", function=function) == 1
    billed = value(samples, "lamina_billed_gb_seconds_total", function="svc.hello")
    assert len(hello_records) == 6
    by_hand = sum(r["billed_ms"] / 1000 * r["memory_mb"] / 1024 for r in hello_records)
    assert billed == pytest.approx(by_hand, rel=1e-9)  # the records' billed ms at 128 MB

    assert requests(samples, "GET /hello", 200) == 5
    assert requests(samples, "POST /fail", 502) == 3
    assert requests(samples, "unmatched", 404) == 1
    assert requests(samples, "POST /gated", 200) == 1
    assert requests(samples, "POST /gated", 429) == 1
    assert requests(samples, INVOKE_ROUTE, 200) == 1
    assert requests(samples, INVOKE_ROUTE, 202) == 1  # the event for svc.doomed

    assert value(samples, "lamina_queue_depth", queue="queue:jobs") == 1
    age = value(samples, "lamina_queue_oldest_age_seconds", queue="queue:jobs")
    assert age is not None and 0 <= age < 60
    assert value(samples, "lamina_queue_depth", queue="async:svc.doomed") == 0
    assert value(samples, "lamina_dead_letters", source="queue:jobs") == 0


async def test_without_recording_metrics_show_only_what_is_read_at_scrape_time(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir({"hello": {"handler": "basic.hello", "events": [{"http": "GET /hello"}]}})
    async with run_platform(app, record=False) as platform, client_for(platform) as client:
        assert (await client.get("/hello")).status_code == 200
        samples = await scrape(platform)
    assert not any(name.startswith("lamina_invocation") for name, _ in samples)
    assert value(samples, "lamina_instances", function="svc.hello", state="live") == 1
    assert requests(samples, "GET /hello", 200) == 1
    assert value(samples, "lamina_queue_depth", queue="async:svc.hello") == 0
