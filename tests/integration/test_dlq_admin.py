"""Dead letters through the admin API: listed with their error and attempts, shown, redriven
back through normal delivery, purged; the function token opens only the producer routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import jsonl, run_platform, send_event, until

from lamina.control import Platform

pytestmark = pytest.mark.timeout(30)

SOURCE = "async:svc.flaky"


def flaky_app(app_dir: Callable[..., Path], tmp_path: Path) -> Path:
    return app_dir(
        {
            "flaky": {"handler": "event_targets.fails_until_fixed", "async": {"max_retries": 0}},
            "other": {"handler": "event_targets.record"},
        },
        env={
            "EVENTS_FILE": str(tmp_path / "events.jsonl"),
            "FIXED_FILE": str(tmp_path / "fixed"),
        },
    )


@pytest.fixture
async def admin_of() -> AsyncIterator[Callable[[Platform], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(platform: Platform) -> httpx.AsyncClient:
        auth = {"authorization": f"Bearer {platform.token}"}
        client = httpx.AsyncClient(base_url=platform.admin_url, headers=auth, timeout=10)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_a_dead_letter_is_listed_shown_redriven_and_delivered(
    app_dir: Callable[..., Path],
    tmp_path: Path,
    admin_of: Callable[[Platform], httpx.AsyncClient],
) -> None:
    events = tmp_path / "events.jsonl"
    async with run_platform(flaky_app(app_dir, tmp_path), event_poll_s=0.02) as platform:
        admin = admin_of(platform)
        request_id = await send_event(platform, "svc.flaky", {"n": 1})

        async def listed() -> list[dict[str, Any]]:
            response = await admin.get("/dlq")
            assert response.status_code == 200, response.text
            items: list[dict[str, Any]] = response.json()
            return items

        (item,) = await until(listed, "the event in /dlq")
        filtered = (await admin.get("/dlq", params={"source": SOURCE})).json()
        elsewhere = (await admin.get("/dlq", params={"source": "async:svc.other"})).json()
        second_page = await admin.get("/dlq", params={"limit": 1, "offset": 1})
        shown = await admin.get(f"/dlq/{SOURCE}/{request_id}")
        unknown = await admin.get(f"/dlq/{SOURCE}/no-such-id")
        bad_limit = await admin.get("/dlq", params={"limit": 0})

        (tmp_path / "fixed").touch()
        redrive = await admin.post("/dlq/redrive", json={"source": SOURCE})
        await until(lambda: [e for e in jsonl(events) if e["outcome"] == "ok"], "redelivery")
        after = await until(
            lambda: _empty(admin), "the dead-letter queue to be empty after the redrive"
        )

    assert item["source"] == SOURCE
    assert item["id"] == request_id
    assert item["payload"] == {"n": 1}
    assert item["error_type"] == "RuntimeError"
    assert "not fixed yet for 1" in item["error_message"]
    assert item["attempts"] == 1
    assert item["first_attempt_ms"] <= item["last_attempt_ms"]
    assert item["first_attempt"].endswith("Z") and item["last_attempt"].endswith("Z")
    assert filtered == [item]
    assert elsewhere == []
    assert second_page.json() == [] and second_page.headers["x-total-count"] == "1"
    assert shown.status_code == 200 and shown.json() == item
    assert unknown.status_code == 404 and "no-such-id" in unknown.json()["message"]
    assert bad_limit.status_code == 400 and "limit" in bad_limit.json()["message"]
    assert redrive.json() == {"redriven": [{"source": SOURCE, "id": request_id}], "missing": []}
    assert after is True
    attempts = jsonl(events)
    assert [(a["request_id"], a["outcome"]) for a in attempts] == [
        (request_id, "raised"),
        (request_id, "ok"),
    ], "the redriven event keeps its id and goes through normal delivery"


async def _empty(admin: httpx.AsyncClient) -> bool:
    return (await admin.get("/dlq")).json() == []


async def test_redrive_by_id_and_purge(
    app_dir: Callable[..., Path],
    tmp_path: Path,
    admin_of: Callable[[Platform], httpx.AsyncClient],
) -> None:
    async with run_platform(flaky_app(app_dir, tmp_path), event_poll_s=0.02) as platform:
        admin = admin_of(platform)
        ids = [await send_event(platform, "svc.flaky", {"n": n}) for n in range(3)]

        async def three() -> bool:
            return len((await admin.get("/dlq")).json()) == 3

        await until(three, "three dead letters")
        redrive = await admin.post("/dlq/redrive", json={"ids": [ids[0], "missing-id"]})
        await until(lambda: len(jsonl(tmp_path / "events.jsonl")) == 4, "the redriven attempt")
        no_source = await admin.delete("/dlq")
        purged = await admin.delete("/dlq", params={"source": SOURCE})
        left = (await admin.get("/dlq")).json()

    assert redrive.json() == {
        "redriven": [{"source": SOURCE, "id": ids[0]}],
        "missing": ["missing-id"],
    }
    assert no_source.status_code == 400 and "source" in no_source.json()["message"]
    # The redriven one failed again (not fixed) and is back: 3 dead letters purged.
    assert purged.json() == {"source": SOURCE, "purged": 3}
    assert left == []


async def test_the_function_token_opens_only_the_producer_routes(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    async with run_platform(flaky_app(app_dir, tmp_path)) as platform:
        auth = {"authorization": f"Bearer {platform.function_token}"}
        async with httpx.AsyncClient(base_url=platform.admin_url, headers=auth) as client:
            status = await client.get("/status")
            dlq = await client.get("/dlq")
            queue = await client.post("/queues/emails/messages", json={"body": "hi"})
            topic = await client.post("/topics/orders/messages", json={"message": "hi"})
    assert status.status_code == 401
    assert dlq.status_code == 401
    assert queue.status_code != 401, queue.text
    assert topic.status_code != 401, topic.text
    assert "'emails'" in queue.json()["message"]
    assert "'orders'" in topic.json()["message"]
