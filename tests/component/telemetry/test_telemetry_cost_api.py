"""`GET /cost` on a real store (SQLite and PostgreSQL) with a fake clock: every figure of a known
workload against a hand computation, per function, per service and in total."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lamina.clock import FakeClock
from lamina.control.admin import admin_app
from lamina.store import Store
from lamina.store.types import InvocationRecord

TOKEN = "t0ken"
NOW_MS = 1_700_000_000_000  # the fake clock's wall time
HOUR_MS = 3_600_000


def _run(
    function_id: str, start_ms: int, duration_ms: float, billed_ms: int, memory_mb: int, **kw: Any
) -> InvocationRecord:
    return InvocationRecord(
        f"r-{function_id}-{start_ms}-{kw.get('status', 'ok')}",
        function_id,
        "http",
        start_ms,
        duration_ms,
        billed_ms,
        None,
        False,
        memory_mb,
        None,
        kw.get("status", "ok"),
    )


# The workload, in the last hour unless said otherwise:
# - shop.checkout, 512 MB: three 500 ms runs 100 ms apart (all three overlap: peak 3), and one
#   of 1000.4 ms billed 1001 ms later on. MB-ms = (3 x 500 + 1001) x 512 = 1,280,512.
# - shop.cart, 128 MB: two 20 ms runs apart (peak 1) and one throttled request (not billed).
#   MB-ms = 2 x 20 x 128 = 5,120.
# - mail.send, 256 MB: one 5 ms run 10 ms ago (MB-ms 1,280), one two hours ago (not counted).
WORKLOAD = [
    *(_run("shop.checkout", NOW_MS - 3_000_000 + i * 100, 500.0, 500, 512) for i in range(3)),
    _run("shop.checkout", NOW_MS - 1_000_000, 1000.4, 1001, 512),
    _run("shop.cart", NOW_MS - 2_000_000, 19.7, 20, 128),
    _run("shop.cart", NOW_MS - 1_000_000, 20.0, 20, 128),
    _run("shop.cart", NOW_MS - 1_000_010, 0.0, 0, 128, status="throttled"),
    _run("mail.send", NOW_MS - 10, 4.2, 5, 256),
    _run("mail.send", NOW_MS - 2 * HOUR_MS, 4.2, 5, 256),
]
ROUND_PRICES = {"gb_second_price": "0.00001", "request_price": "1"}  # easy by hand


async def _cost(store: Store, retention_s: float | None = None, **params: str) -> httpx.Response:
    await store.add_invocations(WORKLOAD)
    clock = FakeClock(start_s=0, wall_offset_s=NOW_MS / 1000)
    app = admin_app(TOKEN, lambda: {}, store=store, clock=clock, retention_s=retention_s)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        return await client.get(
            "/cost", params=params, headers={"Authorization": f"Bearer {TOKEN}"}
        )


def _rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row.pop("name"): row for row in report["rows"]}


async def test_cost_by_function_matches_the_hand_computation(store: Store) -> None:
    response = await _cost(store, since="1h", by="function", **ROUND_PRICES)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["since_ms"] == NOW_MS - HOUR_MS and report["until_ms"] == NOW_MS
    assert report["window_s"] == 3600 and report["by"] == "function"
    assert report["prices"] == {"gb_second": 0.00001, "request_per_million": 1.0}
    assert [row["name"] for row in report["rows"]] == ["shop.checkout", "shop.cart", "mail.send"]
    rows = _rows(report)
    checkout = rows["shop.checkout"]
    assert checkout == pytest.approx(
        {
            "requests": 4,
            "gb_seconds": 1.2505,  # 1,280,512 MB-ms / 1024 / 1000
            "request_cost": 0.000004,  # 4 x $1 / 1e6
            "compute_cost": 0.000012505,  # 1.2505 x $0.00001
            "cost": 0.000016505,
            "peak_concurrency": 3,
            "always_on_gb_seconds": 5400.0,  # 3 x 0.5 GB x 3600 s
            "always_on_cost": 0.054,
            "saving": 0.054 - 0.000016505,
        }
    )
    assert rows["shop.cart"] == pytest.approx(
        {
            "requests": 2,  # the throttled request is not billed
            "gb_seconds": 0.005,  # 5,120 MB-ms
            "request_cost": 0.000002,
            "compute_cost": 0.00000005,
            "cost": 0.00000205,
            "peak_concurrency": 1,
            "always_on_gb_seconds": 450.0,  # 1 x 0.125 GB x 3600 s
            "always_on_cost": 0.0045,
            "saving": 0.0045 - 0.00000205,
        }
    )
    assert rows["mail.send"]["requests"] == 1  # the run two hours ago is outside the window
    assert rows["mail.send"]["gb_seconds"] == pytest.approx(0.00125)  # 5 ms x 256 MB
    assert rows["mail.send"]["always_on_gb_seconds"] == pytest.approx(900.0)  # 0.25 GB x 3600 s
    assert report["total"] == pytest.approx(
        {
            "requests": 7,
            "gb_seconds": 1.25675,
            "request_cost": 0.000007,
            "compute_cost": 0.0000125675,
            "cost": 0.0000195675,
            "always_on_gb_seconds": 6750.0,  # 5400 + 450 + 900
            "always_on_cost": 0.0675,
            "saving": 0.0675 - 0.0000195675,
        }
    )


async def test_cost_by_service_sums_the_functions_and_their_peaks(store: Store) -> None:
    response = await _cost(store, since="1h", **ROUND_PRICES)  # by service is the default

    report = response.json()
    assert report["by"] == "service"
    rows = _rows(report)
    assert list(rows) == ["shop", "mail"]
    assert rows["shop"]["requests"] == 6
    assert rows["shop"]["gb_seconds"] == pytest.approx(1.2555)
    assert rows["shop"]["peak_concurrency"] == 4  # always-on instances: 3 checkout + 1 cart
    assert rows["shop"]["always_on_gb_seconds"] == pytest.approx(5850.0)
    assert rows["shop"]["cost"] == pytest.approx(0.000016505 + 0.00000205)
    assert rows["mail"]["peak_concurrency"] == 1
    assert report["total"]["saving"] == pytest.approx(0.0675 - 0.0000195675)


async def test_cost_defaults_to_the_last_day_at_aws_lambda_prices(store: Store) -> None:
    response = await _cost(store, function="mail.send")

    report = response.json()
    assert report["window_s"] == 86400
    assert report["prices"] == {"gb_second": 0.0000166667, "request_per_million": 0.2}
    [row] = report["rows"]
    assert row["name"] == "mail" and row["requests"] == 2  # both runs are within a day
    assert row["gb_seconds"] == pytest.approx(0.0025)
    assert row["cost"] == pytest.approx(2 * 0.2 / 1e6 + 0.0025 * 0.0000166667)
    assert row["always_on_gb_seconds"] == pytest.approx(0.25 * 86400)


async def test_the_window_starts_no_earlier_than_the_records_are_kept(store: Store) -> None:
    # since=0 asks for 1970 onwards: the always-on side would be priced for 56 years.
    response = await _cost(store, retention_s=2 * HOUR_MS / 1000, since="0", by="function")

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["since_ms"] == NOW_MS - 2 * HOUR_MS and report["window_s"] == 7200
    rows = _rows(report)
    # mail.send ran exactly 2 hours ago (start of the window): counted, with its 10 ms run.
    assert rows["mail.send"]["requests"] == 2
    # Always-on for the 2-hour window: shop.checkout's peak of 3 x 512 MB x 7200 s.
    assert rows["shop.checkout"]["always_on_gb_seconds"] == pytest.approx(3 * 0.5 * 7200)
