"""A service's own SQL database with the real platform: functions use `lamina.sql()` from their
instance processes on SQLite and PostgreSQL, and on PostgreSQL the app never holds more
connections than the bound it computes at start (`GET /status`)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from harness import HANDLERS, client_for, run_platform

from lamina.errors import PlatformError

pytestmark = pytest.mark.timeout(120)


def sql_app(directory: Path, max_instances: int = 3) -> Path:
    manifest = {
        "app": "sql",
        "services": {
            "notes": {
                "path": str(HANDLERS),
                "tables": {"hits": {"key": "id"}},
                "functions": {
                    "setup": {"handler": "sql.setup", "max_instances": 1},
                    "write": {"handler": "sql.write", "max_instances": 4},
                    "count": {"handler": "sql.count", "max_instances": 1},
                    "hold": {"handler": "sql.hold", "max_instances": max_instances},
                },
            },
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return directory


async def call(client: httpx.AsyncClient, function_id: str, payload: dict[str, Any]) -> Any:
    response = await client.post(f"/2015-03-31/functions/{function_id}/invocations", json=payload)
    assert response.status_code == 200, response.text
    return response.headers.get("x-amz-function-error"), response.json()


async def test_functions_run_transactions_in_their_services_database(
    tmp_path: Path, store_url: str | None
) -> None:
    app = sql_app(tmp_path / "app")
    async with run_platform(app, store_url=store_url) as platform, client_for(platform) as c:
        assert await call(c, "notes.setup", {}) == (None, None)
        results = await asyncio.gather(*(call(c, "notes.write", {"id": i}) for i in range(12)))
        assert [error for error, _ in results] == [None] * 12
        assert all(1 <= body["count"] <= 12 for _, body in results)  # its own row, at least
        error, body = await call(c, "notes.write", {"id": 99, "fail": True})
        assert (error, body["errorMessage"]) == ("Unhandled", "rolled back")
        assert await call(c, "notes.count", {}) == (None, 12)  # the failed insert rolled back
    if store_url is None:  # the service's file, shared with its tables
        assert (app / ".lamina" / "services" / "notes.db").is_file()


class Watch:
    """Counts the test database's connections every few ms, from a thread, while load runs."""

    def __init__(self, url: str, application_name: str) -> None:
        self.url = url
        self.name = application_name
        self.most_instance = 0
        self.most_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE application_name = %s), count(*)"
                    " FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    (self.name,),
                ).fetchone()
                assert row is not None
                self.most_instance = max(self.most_instance, row[0])
                self.most_total = max(self.most_total, row[1])
                self._stop.wait(0.005)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


async def test_three_times_max_instances_concurrent_requests_stay_within_the_bound(
    tmp_path: Path, postgres_url: str, postgres_schema_url: str
) -> None:
    app = sql_app(tmp_path / "app", max_instances=3)
    database = postgres_url  # the schema's database (its host may be in the query: pgserver)
    async with run_platform(app, store_url=postgres_schema_url) as platform:
        auth = {"authorization": f"Bearer {platform.token}"}
        async with httpx.AsyncClient(base_url=platform.admin_url, headers=auth) as admin:
            status = (await admin.get("/status")).json()
        bound = status["db_connections"]
        # store pool 10 + the platform's connection to the service's schema + 4 + 1 + 1 + 3
        assert bound["max"] == 10 + 1 + 4 + 1 + 1 + 3
        assert bound["functions"]["notes.hold"] == 3
        with Watch(database, "lamina:notes.hold") as watch:
            async with client_for(platform) as c:
                for _ in range(2):
                    results = await asyncio.gather(*(call(c, "notes.hold", {}) for _ in range(9)))
                    assert [error for error, _ in results] == [None] * 9
        assert len({body["pid"] for _, body in results}) > 1, "expected several instances"
        assert 1 <= watch.most_instance <= 3  # max_instances x concurrency 1
        assert watch.most_total <= bound["max"]


async def test_a_max_db_connections_below_the_bound_refuses_to_start(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    app = sql_app(tmp_path / "app")
    with pytest.raises(PlatformError, match="may hold up to 20 PostgreSQL connections, over"):
        async with run_platform(app, store_url=postgres_schema_url, max_db_connections=19):
            pass
