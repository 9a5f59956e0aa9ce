"""Invocation records and function logs: kept in the store, served by the admin API and the
CLI, with Lambda's START / END / REPORT lines."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import client_for, run_platform
from typer.testing import CliRunner

from lamina.cli import app as cli_app
from lamina.control import Platform


async def _admin(platform: Platform, path: str, **params: Any) -> Any:
    assert platform.recorder is not None
    await platform.recorder.flush()  # what is buffered is written now: no waiting
    async with httpx.AsyncClient(base_url=platform.admin_url, timeout=10) as admin:
        response = await admin.get(
            path, params=params, headers={"Authorization": f"Bearer {platform.token}"}
        )
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_invocation_is_recorded_and_its_report_matches_the_record(
    app_dir: Callable[..., Path], executor: dict[str, Any]
) -> None:
    app = app_dir({"talk": {"handler": "observed.talk", "events": [{"http": "GET /talk"}]}})
    async with run_platform(app, **executor) as platform, client_for(platform) as client:
        response = await client.get("/talk")
        rid = response.headers["x-amzn-requestid"]
        (record,) = await _admin(platform, "/invocations", request_id=rid)
        lines = await _admin(platform, "/logs", request_id=rid)
    assert record["function_id"] == "svc.talk"
    assert record["trigger"] == "http"
    assert record["status"] == "ok" and record["error_type"] is None
    assert record["cold"] is True and record["init_ms"] > 0
    assert record["memory_mb"] == 128 and record["max_memory_mb"] > 0
    assert record["billed_ms"] == max(1, math.ceil(record["duration_ms"]))
    messages = [line["message"] for line in lines]
    assert messages[0] == f"START RequestId: {rid} Version: $LATEST"
    assert f"hello from {rid}" in messages
    warning = next(line for line in lines if "disk almost full" in line["message"])
    assert warning["level"] == "WARNING" and warning["stream"] == "stderr"
    assert warning["message"].startswith("[WARNING]\t") and f"\t{rid}\t" in warning["message"]
    assert not any("not shown" in m for m in messages)
    assert warning["instance_id"] == record["instance_id"]
    report = messages[-1]
    assert messages[-2] == f"END RequestId: {rid}"
    assert report.startswith(f"REPORT RequestId: {rid}\t")
    assert f"Duration: {record['duration_ms']:.2f} ms" in report
    assert f"Billed Duration: {record['billed_ms']} ms" in report
    assert "Memory Size: 128 MB" in report
    assert f"Max Memory Used: {record['max_memory_mb']} MB" in report
    assert f"Init Duration: {record['init_ms']:.2f} ms" in report


@pytest.mark.parametrize(
    ("handler", "words"),
    [
        ("observed.print_then_crash", "last words before the crash"),
        ("observed.print_then_killed", "last words before the kill"),
    ],
    ids=["exit right after an unflushed print", "SIGKILL right after a print to stderr"],
)
async def test_a_crash_right_after_a_print_keeps_that_line(
    app_dir: Callable[..., Path], handler: str, words: str, executor: dict[str, Any]
) -> None:
    app = app_dir({"crash": {"handler": handler}})
    async with run_platform(app, **executor) as platform, client_for(platform) as client:
        response = await client.post("/2015-03-31/functions/svc.crash/invocations", json={})
        rid = response.headers["x-amzn-requestid"]
        (record,) = await _admin(platform, "/invocations", function="svc.crash")
        lines = await _admin(platform, "/logs", request_id=rid, platform_lines="0")
    assert response.headers["x-amz-function-error"] == "Unhandled"
    assert record["request_id"] == rid and record["trigger"] == "invoke"
    assert record["status"] == "crashed" and record["error_type"] == "Runtime.ExitError"
    assert [line["message"] for line in lines] == [words]


async def test_the_cli_shows_invocations_and_filters_logs(app_dir: Callable[..., Path]) -> None:
    app = app_dir({"talk": {"handler": "observed.talk", "events": [{"http": "GET /talk"}]}})
    async with run_platform(app) as platform, client_for(platform) as client:
        rids = [(await client.get("/talk")).headers["x-amzn-requestid"] for _ in range(3)]
        assert platform.recorder is not None
        await platform.recorder.flush()
        runner = CliRunner()

        def cli(*args: str) -> Any:
            return runner.invoke(cli_app, [*args, "-C", str(app)])

        listed = await asyncio.to_thread(cli, "invocations", "svc.talk", "--json")
        grepped = await asyncio.to_thread(
            cli, "logs", "--request-id", rids[1], "--grep", "hello", "--json"
        )
        bad_since = await asyncio.to_thread(cli, "logs", "--since", "yesterday")
        bad_status = await asyncio.to_thread(cli, "invocations", "--status", "failed")
        none_failed = await asyncio.to_thread(cli, "invocations", "--status", "error")
        table = await asyncio.to_thread(cli, "invocations")
        printed = await asyncio.to_thread(cli, "logs", "--request-id", rids[0])
    assert listed.exit_code == 0, listed.output
    assert rids[2] in listed.output and rids[0] in listed.output
    assert grepped.exit_code == 0, grepped.output
    assert grepped.output.count('"message"') == 1
    assert f"hello from {rids[1]}" in grepped.output
    assert bad_since.exit_code == 1
    assert "since: expected a duration like 10m" in bad_since.output
    assert bad_status.exit_code == 1
    assert "status: expected one of ok, error, timeout" in bad_status.output
    assert none_failed.exit_code == 0
    assert "No invocations recorded that match." in none_failed.output
    assert table.exit_code == 0 and all(rid in table.output for rid in rids)  # whole ids
    tail = f"[svc.talk {rids[0][-8:]}]"
    assert printed.exit_code == 0
    assert f"{tail} START RequestId: {rids[0]} Version: $LATEST" in printed.output
    assert f"{tail} hello from {rids[0]}" in printed.output


async def test_invocations_page_with_the_next_cursor_and_skip_none(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir({"talk": {"handler": "observed.talk", "events": [{"http": "GET /talk"}]}})
    async with run_platform(app) as platform, client_for(platform) as client:
        sent = {(await client.get("/talk")).headers["x-amzn-requestid"] for _ in range(7)}
        assert platform.recorder is not None
        await platform.recorder.flush()
        auth = {"Authorization": f"Bearer {platform.token}"}
        seen: list[str] = []
        cursors: list[str | None] = []
        async with httpx.AsyncClient(base_url=platform.admin_url, timeout=10) as admin:
            params: dict[str, Any] = {"function": "svc.talk", "limit": 3}
            while True:
                page = await admin.get("/invocations", params=params, headers=auth)
                assert page.status_code == 200, page.text
                seen += [r["request_id"] for r in page.json()]
                cursors.append(page.headers.get("x-next-cursor"))
                if cursors[-1] is None:
                    break
                params["cursor"] = cursors[-1]
            bad = await admin.get("/invocations", params={"cursor": "yesterday"}, headers=auth)

    assert sorted(seen) == sorted(sent) and len(seen) == 7  # every one, once
    assert len(cursors) == 3  # pages of 3, 3 and 1; the last one has no next cursor
    assert bad.status_code == 400 and "cursor" in bad.json()["message"]
