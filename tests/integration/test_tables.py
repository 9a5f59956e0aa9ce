"""Service tables with the real platform: functions use `lamina.table` from their instance
processes, on SQLite (the default) and on PostgreSQL (`--store postgresql://...`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import HANDLERS, client_for, run_platform

from lamina.control import Platform

pytestmark = pytest.mark.timeout(90)


def tables_app(directory: Path) -> Path:
    """Two services with tables: `shop` (orders, events, counters) and `billing` (ledger)."""
    manifest = {
        "app": "tables",
        "services": {
            "shop": {
                "path": str(HANDLERS),
                "tables": {
                    "orders": {"key": "id"},
                    "events": {"key": "user", "sort": "at", "ttl": "expires_at"},
                    "counters": {"key": "id"},
                },
                "functions": {
                    "op": {"handler": "tables.op"},
                    "incr": {"handler": "tables.incr", "max_instances": 5},
                },
            },
            "billing": {
                "path": str(HANDLERS),
                "tables": {"ledger": {"key": "id"}},
                "functions": {"op": {"handler": "tables.op"}},
            },
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return directory


async def call(
    client: httpx.AsyncClient, function_id: str, payload: dict[str, Any]
) -> tuple[Any, str | None]:
    """Invoke and return (result, None), or (error body, error type) when the function raised."""
    response = await client.post(f"/2015-03-31/functions/{function_id}/invocations", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    if "x-amz-function-error" in response.headers:
        return body, body["errorType"]
    return body, None


async def test_functions_put_get_and_query_their_tables(
    tmp_path: Path, store_url: str | None
) -> None:
    app = tables_app(tmp_path / "app")
    async with run_platform(app, store_url=store_url) as platform, client_for(platform) as c:
        put = {"table": "orders", "op": "put", "args": [{"id": "o1", "total": 12.5}]}
        assert await call(c, "shop.op", put) == (None, None)
        get = {"table": "orders", "op": "get", "args": ["o1"]}
        assert await call(c, "shop.op", get) == ({"id": "o1", "total": 12.5}, None)
        put["kwargs"] = {"if_absent": True}
        body, error = await call(c, "shop.op", put)
        assert error == "ConditionFailed"
        assert (
            "condition if_absent failed: an item with key 'o1' already exists"
            in (body["errorMessage"])
        )
        for at in ("2024-01-02", "2024-01-01", "2024-02-01"):
            item = {"user": "ada", "at": at}
            await call(c, "shop.op", {"table": "events", "op": "put", "args": [item]})
        query = {"table": "events", "op": "query", "args": ["ada"], "kwargs": {"prefix": "2024-01"}}
        page, error = await call(c, "shop.op", query)
        assert error is None
        assert page == {
            "items": [{"user": "ada", "at": "2024-01-01"}, {"user": "ada", "at": "2024-01-02"}],
            "cursor": None,
        }
    if store_url is None:  # SQLite: the service's data lives in its own file
        assert (app / ".lamina" / "services" / "shop.db").is_file()


async def test_fifty_concurrent_increments_from_parallel_instances_give_fifty(
    tmp_path: Path, store_url: str | None
) -> None:
    app = tables_app(tmp_path / "app")
    async with run_platform(app, store_url=store_url) as platform, client_for(platform) as c:
        results = await asyncio.gather(*(call(c, "shop.incr", {}) for _ in range(50)))
        get = {"table": "counters", "op": "get", "args": ["hits"]}
        final, _ = await call(c, "shop.op", get)
    assert [error for _, error in results] == [None] * 50
    assert sorted(body["n"] for body, _ in results) == list(range(1, 51))  # each saw its own
    assert len({body["pid"] for body, _ in results}) > 1, "expected several instances"
    assert final == {"id": "hits", "n": 50}


async def test_a_function_cannot_reach_another_services_table(
    tmp_path: Path, store_url: str | None
) -> None:
    app = tables_app(tmp_path / "app")
    async with run_platform(app, store_url=store_url) as platform, client_for(platform) as c:
        await call(c, "shop.op", {"table": "orders", "op": "put", "args": [{"id": "secret"}]})
        body, error = await call(c, "billing.op", {"table": "orders", "op": "get", "args": ["x"]})
        mine, _ = await call(c, "billing.op", {"table": "ledger", "op": "scan"})
    assert error == "TableNotFound"
    assert body["errorMessage"] == (
        "table 'orders': service 'billing' has no such table: it belongs to service 'shop', and"
        " a function can use only its own service's tables (services share data through"
        " invocations, queues and topics); its tables: 'ledger'"
    )
    assert mine == {"items": [], "cursor": None}


async def lamina_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lamina",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def fill(platform: Platform) -> None:
    async with client_for(platform) as c:
        for i in range(3):
            item = {"id": f"o{i}", "total": i}
            await call(c, "shop.op", {"table": "orders", "op": "put", "args": [item]})
        await call(c, "shop.op", {"table": "orders", "op": "put", "args": [{"id": 7}]})
        event = {"user": "ada", "at": 5, "what": "login"}
        await call(c, "shop.op", {"table": "events", "op": "put", "args": [event]})


async def test_admin_api_shows_tables_and_items(tmp_path: Path) -> None:
    app = tables_app(tmp_path / "app")
    async with run_platform(app) as platform:
        await fill(platform)
        headers = {"Authorization": f"Bearer {platform.token}"}
        async with httpx.AsyncClient(base_url=platform.admin_url, headers=headers) as admin:
            listing = (await admin.get("/tables")).json()
            first = (await admin.get("/tables/shop/orders/items", params={"limit": 2})).json()
            rest = await admin.get(
                "/tables/shop/orders/items", params={"limit": 2, "cursor": first["cursor"]}
            )
            by_text = await admin.get("/tables/shop/orders/items/o1")
            by_number = await admin.get("/tables/shop/orders/items/7")
            with_sort = await admin.get("/tables/shop/events/items/ada", params={"sort": "5"})
            missing = await admin.get("/tables/shop/orders/items/nope")
            other = await admin.get("/tables/billing/orders/items")
            no_service = await admin.get("/tables/nope/orders/items")
            no_token = await admin.get("/tables", headers={"Authorization": "Bearer x"})
    assert listing == [
        {"service": "shop", "table": "orders", "key": "id", "sort": None, "ttl": None, "items": 4},
        {"service": "shop", "table": "events", "key": "user", "sort": "at", "ttl": "expires_at",
         "items": 1},
        {"service": "shop", "table": "counters", "key": "id", "sort": None, "ttl": None,
         "items": 0},
        {"service": "billing", "table": "ledger", "key": "id", "sort": None, "ttl": None,
         "items": 0},
    ]  # fmt: skip
    assert [i["id"] for i in first["items"]] == [7, "o0"]  # numbers sort before strings
    assert rest.json() == {"items": [{"id": "o1", "total": 1}, {"id": "o2", "total": 2}],
                           "cursor": None}  # fmt: skip
    assert by_text.json() == {"id": "o1", "total": 1}
    assert by_number.json() == {"id": 7}
    assert with_sort.json() == {"user": "ada", "at": 5, "what": "login"}
    assert missing.status_code == 404
    assert "no item with key 'nope'" in missing.json()["message"]
    assert other.status_code == 404
    assert "belongs to service 'shop'" in other.json()["message"]
    assert no_service.status_code == 404
    assert "no service 'nope' in this app" in no_service.json()["message"]
    assert no_token.status_code == 401


async def test_cli_lists_gets_and_scans(tmp_path: Path) -> None:
    app = tables_app(tmp_path / "app")
    async with run_platform(app) as platform:
        await fill(platform)
        ls = await lamina_cli("table", "ls", "-C", str(app))
        get = await lamina_cli("table", "get", "shop.orders", "o2", "-C", str(app))
        get_sorted = await lamina_cli(
            "table", "get", "shop.events", "ada", "--sort", "5", "-C", str(app)
        )
        scan = await lamina_cli("table", "scan", "shop.orders", "--limit", "3", "-C", str(app))
        scan_all = await lamina_cli(
            "table", "scan", "shop.orders", "--limit", "3", "--all", "-C", str(app)
        )
        missing = await lamina_cli("table", "get", "shop.orders", "nope", "-C", str(app))
        bad_name = await lamina_cli("table", "scan", "orders", "-C", str(app))
    code, out, err = ls
    assert code == 0, err
    assert "shop.orders" in out and "billing.ledger" in out and "expires_at" in out
    code, out, err = get
    assert code == 0, err
    assert json.loads(out) == {"id": "o2", "total": 2}
    assert json.loads(get_sorted[1]) == {"user": "ada", "at": 5, "what": "login"}
    code, out, err = scan
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == [7, "o0", "o1"]
    assert err.startswith("more: --cursor ")
    code, out, err = scan_all
    assert [json.loads(line)["id"] for line in out.splitlines()] == [7, "o0", "o1", "o2"]
    code, out, err = missing
    assert code == 1 and "no item with key 'nope'" in err
    code, out, err = bad_name
    assert code == 2 and "expected SERVICE.TABLE" in err
