"""Asynchronous (`Event`) invocations: stored before 202, delivered, retried, dead-lettered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import client_for, jsonl, run_platform, send_event, until
from typer.testing import CliRunner

from lamina.cli import app as cli_app


async def test_an_event_is_stored_then_delivered_with_its_request_id(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts.jsonl"
    app = app_dir(
        {"record": {"handler": "async_targets.record"}}, env={"ATTEMPTS_FILE": str(attempts)}
    )
    async with run_platform(app) as platform:
        request_id = await send_event(platform, "svc.record", {"n": 1})
        await until(lambda: len(jsonl(attempts)) == 1, "the event to be delivered")
        assert platform.store is not None
        await until(lambda: platform.async_invoker.delivered == 1, "the ack")  # type: ignore[union-attr]
        left = await platform.store.peek("async:svc.record")
    assert jsonl(attempts) == [{"request_id": request_id, "event": {"n": 1}, "outcome": "ok"}]
    assert left == [], "an acknowledged event is deleted from its queue"


async def test_a_failing_event_is_retried_with_the_same_id_then_dead_lettered(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts.jsonl"
    app = app_dir(
        {
            "fails": {
                "handler": "async_targets.always_fail",
                "async": {"max_retries": 2, "backoff": 0.05},
            }
        },
        env={"ATTEMPTS_FILE": str(attempts)},
    )
    async with run_platform(app, event_poll_s=0.02) as platform:
        request_id = await send_event(platform, "svc.fails", {"n": 7})
        assert platform.store is not None
        store = platform.store

        async def dead_lettered() -> list[Any]:
            return await store.peek("dlq:async:svc.fails")

        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        dlq: list[Any] = []
        while not dlq:
            assert loop.time() < end, "the event never reached the dead-letter queue"
            dlq = await dead_lettered()
            await asyncio.sleep(0.02)
        queued = await store.peek("async:svc.fails")
    tried = jsonl(attempts)
    assert [a["request_id"] for a in tried] == [request_id] * 3, "1 attempt + 2 retries, one id"
    assert queued == []
    (message,) = dlq
    assert message.id == request_id
    assert json.loads(message.body) == {"n": 7}
    assert message.receive_count == 3
    assert message.last_error["errorType"] == "ValueError"
    assert "attempt failed for 7" in message.last_error["errorMessage"]


async def test_an_async_payload_over_one_megabyte_is_refused_with_413(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    app = app_dir({"record": {"handler": "async_targets.record"}}, env={"ATTEMPTS_FILE": "x"})
    async with run_platform(app) as platform, client_for(platform) as client:
        response = await client.post(
            "/2015-03-31/functions/svc.record/invocations",
            content=b'"' + b"x" * (1024 * 1024) + b'"',
            headers={"X-Amz-Invocation-Type": "Event"},
        )
    assert response.status_code == 413
    assert response.headers["x-amzn-errortype"] == "RequestTooLargeException"
    assert "1048576 bytes" in response.json()["message"]


async def test_invoke_async_from_function_code_and_the_cli_are_delivered(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts.jsonl"
    app = app_dir(
        {
            "record": {"handler": "async_targets.record"},
            "fire": {"handler": "async_targets.fire_and_forget"},
        },
        env={"ATTEMPTS_FILE": str(attempts)},
    )
    async with run_platform(app) as platform, client_for(platform) as client:
        fired = await client.post("/2015-03-31/functions/svc.fire/invocations", json={})
        queued_by_code = fired.json()["queued"]
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli_app,
            ["invoke", "svc.record", "--async", "-C", str(app), "--data", '{"from": "cli"}'],
        )
        await until(lambda: len(jsonl(attempts)) == 2, "both queued invocations")
    assert result.exit_code == 0, result.output
    by_event = {a["event"]["from"]: a["request_id"] for a in jsonl(attempts)}
    assert by_event[fired.headers["x-amzn-requestid"]] == queued_by_code
    assert by_event["cli"] in result.output, "the CLI prints the request id it queued"
