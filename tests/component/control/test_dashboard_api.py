"""The dashboard's admin routes on a real store (both backends) through the ASGI app: time
series from invocation records, the map, queue depths with dead letters, and which paths open
without the token (the page and its assets, nothing else)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from lamina.clock import FakeClock
from lamina.control.admin import admin_app
from lamina.control.dashboard_api import dashboard_routes
from lamina.dashboard import PUBLIC_PATHS, STATIC_DIR
from lamina.manifest import AppSpec, parse_app
from lamina.store import Store
from lamina.store.types import InvocationRecord, NewMessage

TOKEN = "secret-token"
MANIFEST = """
app: shop
services:
  web:
    functions:
      home:
        handler: h.home
        events: [{http: GET /home}]
  orders:
    functions:
      fulfil:
        handler: h.fulfil
        events: [{queue: orders}]
"""


@pytest.fixture
def app(tmp_path: Path) -> AppSpec:
    for service in ("web", "orders"):
        (tmp_path / "services" / service).mkdir(parents=True)
        (tmp_path / "services" / service / "h.py").write_text("")
    return parse_app(MANIFEST, root=tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_offset_s=1_700_000_000.0 - 1000.0)  # wall() == 1_700_000_000 s


@pytest.fixture
async def admin(app: AppSpec, store: Store, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    dlqs = ["dlq:queue:orders", "dlq:async:web.home", "dlq:async:orders.fulfil"]
    asgi = admin_app(
        TOKEN,
        lambda: {"app": "shop", "functions": []},
        store=store,
        dead_letter_queues=dlqs,
        clock=clock,
        extra_routes=dashboard_routes(app, store, clock, dlqs),
        public_paths=PUBLIC_PATHS,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi),
        base_url="http://admin",
        headers={"authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


NOW_MS = 1_700_000_000_000


def _record(n: int, ago_ms: int, **fields: object) -> InvocationRecord:
    record = InvocationRecord(
        f"req-{n}", "web.home", "http", NOW_MS - ago_ms, 8.0, 8, None, False, 128, 20, "ok"
    )
    for key, value in fields.items():
        setattr(record, key, value)
    return record


async def test_stats_are_time_series_per_function_of_the_recorded_invocations(
    admin: httpx.AsyncClient, store: Store
) -> None:
    await store.add_invocations(
        [
            _record(1, 50_000, cold=True, init_ms=30.0),
            _record(2, 45_000),
            _record(3, 5_000, status="error", error_type="ValueError", duration_ms=80.0),
            _record(4, 20 * 60_000),  # older than the window
        ]
    )

    response = await admin.get("/stats", params={"since": "1m", "step": "10s"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["step_ms"] == 10_000
    assert len(body["buckets"]) == 7 and body["buckets"][0] == NOW_MS - 60_000
    home = body["functions"]["web.home"]
    assert home["requests"] == [0, 2, 0, 0, 0, 1, 0]
    assert home["errors"] == [0, 0, 0, 0, 0, 1, 0]
    assert home["cold_starts"] == [0, 1, 0, 0, 0, 0, 0]
    assert home["total"]["requests"] == 3
    assert 7.94 < home["total"]["p50_ms"] <= 10.0  # in the bin of 8 ms: (7.94, 10]
    assert body["functions"]["orders.fulfil"]["total"]["requests"] == 0  # listed, idle


async def test_stats_can_be_narrowed_to_one_function(
    admin: httpx.AsyncClient, store: Store
) -> None:
    await store.add_invocations([_record(1, 1000), _record(2, 1000, function_id="orders.fulfil")])

    body = (await admin.get("/stats", params={"function": "orders.fulfil", "since": "5m"})).json()

    assert list(body["functions"]) == ["orders.fulfil"]
    assert body["functions"]["orders.fulfil"]["total"]["requests"] == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"step": "0s"}, "step: expected a duration like 5s", id="zero step"),
        pytest.param({"step": "fast"}, "step: expected a duration like 5s", id="no unit"),
        pytest.param({"since": "yesterday"}, "since: expected a duration", id="bad since"),
        pytest.param({"since": "1d", "step": "1s"}, "use a larger step", id="too many points"),
    ],
)
async def test_bad_stats_parameters_are_refused_with_the_reason(
    admin: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await admin.get("/stats", params=params)

    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_the_map_shows_services_and_their_triggers(admin: httpx.AsyncClient) -> None:
    body = (await admin.get("/map")).json()

    assert [s["name"] for s in body["services"]] == ["web", "orders"]
    assert [(e["from"], e["to"]) for e in body["edges"]] == [
        ("route:GET /home", "web.home"),
        ("queue:orders", "orders.fulfil"),
    ]


async def test_queues_list_every_source_with_its_depth_and_dead_letters(
    admin: httpx.AsyncClient, store: Store
) -> None:
    await store.enqueue(
        [
            NewMessage("queue:orders", b"{}"),
            NewMessage("queue:orders", b"{}", delay_ms=60_000),
            NewMessage("dlq:queue:orders", b"{}"),
            NewMessage("queue:unknown", b"{}"),  # not in the app, but holding a message
        ],
        now_ms=NOW_MS - 30_000,
    )

    body = (await admin.get("/queues")).json()

    by_queue = {row["queue"]: row for row in body}
    assert sorted(by_queue) == [
        "async:orders.fulfil",
        "async:web.home",
        "queue:orders",
        "queue:unknown",
    ]
    orders = by_queue["queue:orders"]
    assert (orders["kind"], orders["name"], orders["depth"], orders["dead_letters"]) == (
        "queue",
        "orders",
        2,
        1,
    )
    assert by_queue["async:web.home"]["depth"] == 0
    assert by_queue["async:web.home"]["oldest_age_s"] is None


async def test_only_the_page_and_its_assets_open_without_the_token(
    admin: httpx.AsyncClient,
) -> None:
    asset = next((STATIC_DIR / "ui").glob("app-*.js")).name
    anonymous = {"authorization": ""}

    page = await admin.get("/", headers=anonymous)
    script = await admin.get(f"/ui/{asset}", headers=anonymous)
    assert page.status_code == 200 and f"/ui/{asset}" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]

    for method, path in [
        ("GET", "/stats"),
        ("GET", "/map"),
        ("GET", "/queues"),
        ("GET", "/status"),
        ("GET", "/dlq"),
        ("POST", "/"),
        ("POST", "/dlq/redrive"),
    ]:
        response = await admin.request(method, path, headers=anonymous)
        assert response.status_code == 401, (method, path)
    escape = await admin.get("/ui/%2e%2e/status", headers=anonymous)
    assert escape.status_code == 404  # the asset mount never reaches a data route
