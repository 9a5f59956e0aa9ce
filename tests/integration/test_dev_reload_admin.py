"""`lamina dev` keeps the admin API and service tables in step with the manifest: a reload
that adds a function shows it in `/status`, `/stats`, `/map` and `/dlq` at once; an added
table and a changed ttl attribute apply without a restart; a table whose key changed is
refused with a clear report while the last good version keeps serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import client_for
from test_dev_reload import dev_platform

from lamina.control import Platform

pytestmark = pytest.mark.timeout(90)

CODE = """\
import time

import lamina


def get(event, context):
    return {"service": "users"}


def put(event, context):
    item = {"email": "ada@example.com", "expires": time.time() - 60}
    lamina.table("sessions").put(item)
    found = lamina.table("sessions").get("ada@example.com")
    return {"found": found is not None}
"""


def manifest(functions: dict[str, Any], tables: dict[str, Any] | None = None) -> str:
    service: dict[str, Any] = {"path": "services/users", "functions": functions}
    if tables is not None:
        service["tables"] = tables
    return yaml.safe_dump({"app": "dev", "services": {"users": service}}, sort_keys=False)


GET = {"get": {"handler": "handlers.get", "events": [{"http": "GET /users"}]}}
PUT = {"put": {"handler": "handlers.put", "events": [{"http": "POST /sessions"}]}}


def write(root: Path, functions: dict[str, Any], tables: dict[str, Any] | None = None) -> Path:
    (root / "services" / "users").mkdir(parents=True)
    (root / "services" / "users" / "handlers.py").write_text(CODE)
    (root / "lamina.yaml").write_text(manifest(functions, tables))
    return root


def admin(platform: Platform) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {platform.token}"}
    return httpx.AsyncClient(base_url=platform.admin_url, headers=headers, timeout=30)


async def test_the_admin_api_shows_a_function_added_by_a_reload(tmp_path: Path) -> None:
    async with dev_platform(write(tmp_path, GET)) as dev, admin(dev.platform) as api:
        report = await dev.edit("lamina.yaml", manifest({**GET, **PUT}))
        status = (await api.get("/status")).json()
        stats = (await api.get("/stats", params={"since": "5m"})).json()
        topology = (await api.get("/map")).json()
        dead = (await api.get("/queues")).json()
    assert report.ok, report.detail
    assert {f["id"] for f in status["functions"]} == {"users.get", "users.put"}
    assert set(stats["functions"]) == {"users.get", "users.put"}
    mapped = {f["id"] for s in topology["services"] for f in s["functions"]}
    assert mapped == {"users.get", "users.put"}
    assert "users.put" in {row["name"] for row in dead}  # its async queue, empty so far


async def test_an_added_table_and_a_changed_ttl_apply_without_a_restart(tmp_path: Path) -> None:
    functions = {**GET, **PUT}
    async with dev_platform(write(tmp_path, functions)) as dev, client_for(dev.platform) as client:
        before = await client.post("/sessions")  # no table yet: the function fails
        added = await dev.edit("lamina.yaml", manifest(functions, {"sessions": {"key": "email"}}))
        kept = await client.post("/sessions")  # no ttl: an old `expires` is just data
        ttl = {"sessions": {"key": "email", "ttl": "expires"}}
        changed = await dev.edit("lamina.yaml", manifest(functions, ttl))
        expired = await client.post("/sessions")  # `expires` is in the past: never read again
        tables = dev.platform.tables
        assert tables is not None
        described = await tables.describe()
    assert before.status_code == 502
    assert added.ok, added.detail
    assert "tables of users applied" in added.message
    assert (kept.status_code, kept.json()) == (200, {"found": True})
    assert changed.ok, changed.detail
    assert (expired.status_code, expired.json()) == (200, {"found": False})
    assert [(t["table"], t["ttl"]) for t in described] == [("sessions", "expires")]


async def test_a_changed_table_key_is_refused_and_the_last_version_keeps_serving(
    tmp_path: Path,
) -> None:
    functions = {**GET, **PUT}
    tables = {"sessions": {"key": "email"}}
    async with dev_platform(write(tmp_path, functions, tables)) as dev:
        async with client_for(dev.platform) as client:
            first = await client.post("/sessions")
            rekeyed = {"sessions": {"key": "id"}}
            extra = {
                **functions,
                "new": {"handler": "handlers.get", "events": [{"http": "GET /new"}]},
            }
            report = await dev.edit("lamina.yaml", manifest(extra, rekeyed))
            again = await client.post("/sessions")
            new_route = await client.get("/new")
        spec = dev.platform.app.services["users"].tables["sessions"]
    assert (first.status_code, again.status_code) == (200, 200)
    assert not report.ok
    assert report.message == "lamina.yaml not applied; still serving the last good version"
    assert report.detail == (
        "service users: table sessions: its keys changed (key email -> key id); existing items "
        "cannot be re-keyed: name a new table, or delete this table's data and restart"
    )
    assert new_route.status_code == 404  # nothing of the refused manifest applied
    assert spec.key == "email"
