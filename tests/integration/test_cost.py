"""`GET /cost` and `lamina cost` on a real platform: the figures match a hand computation from
the invocation records of a known workload (a known peak held at a gate, a throttled request
that is not billed)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from handlers.ops import Gate
from harness import client_for, run_platform
from typer.testing import CliRunner

from lamina.cli import app as cli_app
from lamina.control import Platform

GB_SECOND = 0.0000166667  # the default prices: AWS Lambda x86 list prices
REQUEST_PER_MILLION = 0.20

FUNCTIONS = {
    # At most 3 at once and no queue: a 4th concurrent request is throttled.
    "work": {
        "handler": "ops.gated",
        "memory": 256,
        "max_instances": 3,
        "max_queued": 0,
        "events": [{"http": "POST /work"}],
    },
    "ping": {"handler": "ops.pid", "memory": 128, "events": [{"http": "GET /ping"}]},
}


async def _admin(platform: Platform, path: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.admin_url, timeout=10) as admin:
        return await admin.get(
            path, params=params, headers={"Authorization": f"Bearer {platform.token}"}
        )


async def _workload(platform: Platform) -> None:
    """work: 3 invocations held at once, 1 throttled, then 2 one after the other; ping: 2."""
    async with client_for(platform) as client, Gate() as gate, asyncio.TaskGroup() as tasks:
        held = [tasks.create_task(client.post("/work", json={"gate": gate.port})) for _ in range(3)]
        await gate.arrivals(3)  # all three are running now: the peak is 3
        throttled = await client.post("/work", json={"gate": gate.port})
        gate.open()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200] * 3
        assert throttled.status_code == 429
        for _ in range(2):
            assert (await client.post("/work", json={"gate": gate.port})).status_code == 200
            assert (await client.get("/ping")).status_code == 200
    assert platform.recorder is not None
    await platform.recorder.flush()


def _peak(records: list[dict[str, Any]]) -> int:
    """The most records running at one moment, by brute force: at each start, count the records
    whose [start_ms, start_ms + floor(duration_ms)) contains it."""
    spans = [(r["start_ms"], r["start_ms"] + math.floor(r["duration_ms"])) for r in records]
    return max(1, *(sum(s <= t < e for s, e in spans) for t, _ in spans))


def _by_hand(
    records: list[dict[str, Any]], window_s: float, gb_second: float, per_million: float
) -> dict[str, dict[str, Any]]:
    """Per function, every figure of a /cost row, computed from the records."""
    rows: dict[str, dict[str, Any]] = {}
    for fid in sorted({r["function_id"] for r in records}):
        mine = [r for r in records if r["function_id"] == fid and r["status"] != "throttled"]
        gb_s = sum(r["billed_ms"] / 1000 * r["memory_mb"] / 1024 for r in mine)
        peak = _peak(mine)
        always_on_gb_s = peak * mine[0]["memory_mb"] / 1024 * window_s
        cost = len(mine) * per_million / 1e6 + gb_s * gb_second
        rows[fid] = {
            "requests": len(mine),
            "gb_seconds": gb_s,
            "request_cost": len(mine) * per_million / 1e6,
            "compute_cost": gb_s * gb_second,
            "cost": cost,
            "peak_concurrency": peak,
            "always_on_gb_seconds": always_on_gb_s,
            "always_on_cost": always_on_gb_s * gb_second,
            "saving": always_on_gb_s * gb_second - cost,
        }
    return rows


def _assert_rows_match(got: list[dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    assert sorted(row["name"] for row in got) == sorted(expected)
    for row in got:
        want = expected[row["name"]]
        assert row["requests"] == want["requests"]
        assert row["peak_concurrency"] == want["peak_concurrency"]
        for key in set(want) - {"requests", "peak_concurrency"}:
            assert row[key] == pytest.approx(want[key], rel=1e-9), (row["name"], key)


async def test_cost_figures_match_a_hand_computation_from_the_invocation_records(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir(FUNCTIONS)
    since_ms = int(time.time() * 1000) - 1
    async with run_platform(app) as platform:
        await _workload(platform)
        records = (await _admin(platform, "/invocations", since=since_ms, limit=1000)).json()
        by_function = (await _admin(platform, "/cost", since=since_ms, by="function")).json()
        by_service = (await _admin(platform, "/cost", since=since_ms)).json()
        repriced = (
            await _admin(
                platform,
                "/cost",
                since=since_ms,
                by="function",
                function="svc.work",
                gb_second_price="0.00002",
                request_price="1.5",
            )
        ).json()

    statuses = sorted((r["function_id"], r["status"]) for r in records)
    assert statuses == [("svc.ping", "ok")] * 2 + [("svc.work", "ok")] * 5 + [
        ("svc.work", "throttled")
    ]
    assert by_function["since_ms"] == since_ms
    window_s = (by_function["until_ms"] - since_ms) / 1000
    assert by_function["window_s"] == window_s
    assert by_function["prices"] == {"gb_second": GB_SECOND, "request_per_million": 0.20}
    expected = _by_hand(records, window_s, GB_SECOND, REQUEST_PER_MILLION)
    assert expected["svc.work"]["requests"] == 5  # the throttled request is not billed
    assert expected["svc.work"]["peak_concurrency"] == 3  # the three held at the gate
    assert expected["svc.ping"]["peak_concurrency"] == 1
    _assert_rows_match(by_function["rows"], expected)
    total = by_function["total"]
    assert total["requests"] == 7
    assert "peak_concurrency" not in total and "name" not in total
    for key in ("gb_seconds", "cost", "always_on_gb_seconds", "always_on_cost", "saving"):
        assert total[key] == pytest.approx(sum(row[key] for row in expected.values()), rel=1e-9)
    assert total["saving"] > 0  # a few seconds of work beats three instances kept on

    # By service: svc's always-on instances are its functions' peaks, 3 + 1.
    [service] = by_service["rows"]
    assert by_service["by"] == "service"
    assert service["name"] == "svc" and service["peak_concurrency"] == 4
    assert service["requests"] == 7
    assert service["gb_seconds"] == pytest.approx(total["gb_seconds"], rel=1e-9)
    service_window_s = by_service["window_s"]
    assert service["always_on_gb_seconds"] == pytest.approx(
        (3 * 256 + 1 * 128) / 1024 * service_window_s, rel=1e-9
    )

    # Prices on the query; the function filter keeps one row.
    assert repriced["prices"] == {"gb_second": 0.00002, "request_per_million": 1.5}
    [work] = repriced["rows"]
    mine = _by_hand(records, repriced["window_s"], 0.00002, 1.5)["svc.work"]
    _assert_rows_match([work], {"svc.work": mine})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"by": "team"}, "by: expected service or function, got 'team'", id="by"),
        pytest.param(
            {"gb_second_price": "-1"},
            "gb_second_price: expected a price >= 0 in USD, got '-1'",
            id="negative price",
        ),
        pytest.param(
            {"request_price": "cheap"},
            "request_price: expected a price >= 0 in USD, got 'cheap'",
            id="price not a number",
        ),
        pytest.param({"since": "yesterday"}, "since: expected a duration like 10m", id="since"),
        pytest.param(
            {"since": "2999-01-01T00:00:00Z"}, "since: expected a time in the past", id="future"
        ),
    ],
)
async def test_bad_cost_parameters_get_a_400_naming_the_parameter(
    app_dir: Callable[..., Path], params: dict[str, str], message: str
) -> None:
    async with run_platform(app_dir(FUNCTIONS)) as platform:
        response = await _admin(platform, "/cost", **params)
        async with httpx.AsyncClient(base_url=platform.admin_url) as anonymous:
            unauthorized = await anonymous.get("/cost")
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert unauthorized.status_code == 401


async def test_lamina_cost_prints_the_same_figures_as_a_table_or_json(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir(FUNCTIONS)
    since_ms = int(time.time() * 1000) - 1
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(cli_app, ["cost", *args, "-C", str(app)], env={"COLUMNS": "160"})

    async with run_platform(app) as platform:
        await _workload(platform)
        records = (await _admin(platform, "/invocations", since=since_ms, limit=1000)).json()
        as_json = await asyncio.to_thread(
            cli, "--json", "--since", str(since_ms), "--by", "function", "--request-price", "2"
        )
        table = await asyncio.to_thread(cli, "--since", str(since_ms))
        bad_by = await asyncio.to_thread(cli, "--by", "team")

    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["prices"] == {"gb_second": GB_SECOND, "request_per_million": 2.0}
    _assert_rows_match(report["rows"], _by_hand(records, report["window_s"], GB_SECOND, 2.0))
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    svc = next(line for line in lines if line.strip("│ ").startswith("svc "))
    assert " 7 " in svc and " 4 " in svc  # 7 requests, always-on instances 3 + 1
    assert any(line.strip("│ ").startswith("total") for line in lines)
    assert "$0.0000166667 per GB-s, $0.20 per 1M requests" in lines[0]
    assert "Pay per use saves $" in table.output
    assert bad_by.exit_code == 2
    assert "'team' is not one of" in bad_by.output
