"""Several control planes (`lamina up` processes) on one PostgreSQL schema and one APP_DIR:
they share API keys, tables, invocation records, logs, dead letters, queues, schedules and one
`max_instances` per function; SIGKILL of one loses no accepted event and the other carries on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import HANDLERS, LAMINA, Up, free_port, jsonl, lamina_up, until

TTL_S = 3  # --plane-ttl: a killed plane's instances stop counting after this


def _app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    slow = tmp_path / "slow"
    slow.touch()
    env = {
        "DELIVERIES_FILE": str(tmp_path / "deliveries.jsonl"),
        "TICKS_FILE": str(tmp_path / "ticks.jsonl"),
        "SLOW_FILE": str(slow),
    }
    functions: dict[str, Any] = {
        "record": {
            "handler": "planes.record",
            "timeout": 2,
            "max_instances": 4,
            "async": {"max_retries": 2, "backoff": 0.05},
        },
        "consume": {
            "handler": "planes.consume",
            "events": [{"queue": {"name": "jobs", "visibility_timeout": 3}}],
        },
        "tick": {"handler": "planes.tick", "events": [{"schedule": "rate(1 second)"}]},
        "hold": {
            "handler": "planes.hold",
            "timeout": 10,
            "max_instances": 2,
            "queue_timeout": 1,
            "events": [{"http": {"route": "GET /held", "auth": "api_key"}}],
        },
        "fail": {"handler": "planes.fail", "async": {"max_retries": 0}},
        "table_op": {"handler": "planes.table_op"},
    }
    manifest = {
        "app": "planes",
        "services": {
            "svc": {
                "path": str(HANDLERS),
                "env": env,
                "tables": {"items": {"key": "id"}},
                "functions": functions,
            }
        },
    }
    (app / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return app


def _up_args(store_url: str) -> tuple[str, ...]:
    return ("--store", store_url, "--plane-ttl", str(TTL_S))


def _admin(up: Up, app: Path) -> httpx.AsyncClient:
    token = (app / ".lamina" / "admin-token").read_text().strip()
    return httpx.AsyncClient(
        base_url=up.admin_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


async def _invoke(
    client: httpx.AsyncClient, function: str, payload: Any, kind: str = "RequestResponse"
) -> httpx.Response:
    return await client.post(
        f"/2015-03-31/functions/svc.{function}/invocations",
        json=payload,
        headers={"X-Amz-Invocation-Type": kind},
    )


def _kill(up: Up) -> None:
    """SIGKILL a plane and every process it started, as when its machine is lost."""
    for proc in up.tree():
        proc.send_signal(signal.SIGKILL)
    os.kill(up.process.pid, signal.SIGKILL)
    up.process.wait(10)


@contextlib.asynccontextmanager
async def _two_planes(app: Path, store_url: str) -> AsyncIterator[tuple[Any, ...]]:
    """Two planes on `app` and `store_url`: (up a, up b, gateway a, gateway b, admin a,
    admin b), the last four as httpx clients."""
    with lamina_up(app, *_up_args(store_url)) as a, lamina_up(app, *_up_args(store_url)) as b:
        async with (
            httpx.AsyncClient(base_url=a.gateway_url, timeout=30) as gw_a,
            httpx.AsyncClient(base_url=b.gateway_url, timeout=30) as gw_b,
            _admin(a, app) as admin_a,
            _admin(b, app) as admin_b,
        ):
            yield a, b, gw_a, gw_b, admin_a, admin_b


async def _instances(admin: httpx.AsyncClient, function: str) -> int:
    status = (await admin.get("/status")).json()
    return next(f["instances"] for f in status["functions"] if f["id"] == f"svc.{function}")


@pytest.mark.timeout(120)
async def test_two_planes_share_keys_tables_records_logs_queues_and_dead_letters(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    app = _app(tmp_path)
    deliveries = tmp_path / "deliveries.jsonl"
    async with _two_planes(app, postgres_schema_url) as (a, b, gw_a, gw_b, admin_a, admin_b):
        # One admin token for both planes, though each could have made its own.
        assert (await admin_a.get("/status")).status_code == 200
        assert (await admin_b.get("/status")).status_code == 200

        # API keys: made on a, valid on b; revoked on b, refused on a.
        made = (await admin_a.post("/keys", json={"name": "ci"})).json()
        key = {"x-api-key": made["key"]}

        async def held_on(gw: httpx.AsyncClient, status: int) -> bool:
            return (await gw.get("/held", headers=key)).status_code == status

        await until(lambda: held_on(gw_b, 200), "a's new key to work on b")
        assert (await admin_b.delete(f"/keys/{made['id']}")).status_code == 200
        await until(lambda: held_on(gw_a, 403), "b's revocation to reach a")

        # Each plane lists both in /status (as of its last heartbeat).
        async def both_listed() -> bool:
            planes = (await admin_a.get("/status")).json()["control_planes"]
            return {p["gateway"] for p in planes} == {a.gateway_url, b.gateway_url}

        await until(both_listed, "plane a to list both planes")
        shown = await asyncio.to_thread(
            subprocess.run,
            [*LAMINA, "status", "--admin-url", a.admin_url, "-C", str(app)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert shown.returncode == 0, shown.stderr
        for gateway in (a.gateway_url, b.gateway_url):
            assert f" {gateway}: " in shown.stdout, shown.stdout
        assert "(this one)" in shown.stdout

        # Tables: written through a's instance, read through b's.
        put = await _invoke(gw_a, "table_op", {"op": "put", "item": {"id": "k", "v": 1}})
        assert put.status_code == 200, put.text
        got = await _invoke(gw_b, "table_op", {"op": "get", "key": "k"})
        assert got.json() == {"id": "k", "v": 1}

        # Invocation records and logs of a's invocation, read through b.
        ran = await _invoke(gw_a, "hold", {"marker": "from-a"})
        assert ran.json()["plane"] == a.gateway_url
        rid = ran.headers["x-amzn-requestid"]

        async def recorded() -> bool:
            records = (await admin_b.get("/invocations", params={"request_id": rid})).json()
            lines = (await admin_b.get("/logs", params={"request_id": rid})).json()
            return len(records) == 1 and any("from-a" in x["message"] for x in lines)

        await until(recorded, "a's invocation record and log line, read through b")

        # Dead letters: an event accepted by a fails there; b lists the dead letter.
        dead = await _invoke(gw_a, "fail", {"n": 1}, kind="Event")
        assert dead.status_code == 202

        async def dead_lettered() -> bool:
            return len((await admin_b.get("/dlq")).json()) == 1

        await until(dead_lettered, "the dead letter to show on b")

        # Queues: sent through each plane, consumed once each.
        for n, admin in enumerate((admin_a, admin_b)):
            sent = await admin.post("/queues/jobs/messages", json={"body": f"job-{n}"})
            assert sent.status_code == 201, sent.text
        await until(lambda: len(jsonl(deliveries)) >= 2, "both queue messages to be consumed")
        await asyncio.sleep(0)  # nothing else to wait for: count what arrived
    assert sorted(d["id"] for d in jsonl(deliveries)) == ["job-0", "job-1"]


@pytest.mark.timeout(120)
async def test_max_instances_holds_across_planes_and_a_killed_planes_share_comes_back(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    app = _app(tmp_path)
    async with _two_planes(app, postgres_schema_url) as (a, _b, gw_a, gw_b, admin_a, admin_b):
        busy = [
            asyncio.create_task(_invoke(gw_a, "hold", {"s": 4})) for _ in range(2)
        ]  # both of hold's max_instances, on plane a

        async def a_runs_two() -> bool:
            return await _instances(admin_a, "hold") == 2

        await until(a_runs_two, "plane a to run 2 instances of hold")
        refused = await _invoke(gw_b, "hold", {"s": 0})
        assert refused.status_code == 429, refused.text
        assert await _instances(admin_b, "hold") == 0
        for task in busy:
            assert (await task).status_code == 200

        # Plane a's instances stay warm (keep_alive) until it is killed; within the ttl
        # after that, b may start them.
        _kill(a)
        killed = time.monotonic()

        async def b_serves() -> bool:
            return (await _invoke(gw_b, "hold", {"s": 0})).status_code == 200

        await until(b_serves, "plane b to start hold", deadline_s=TTL_S + 15)
        print(f"b started hold {time.monotonic() - killed:.1f} s after a's SIGKILL")
        assert time.monotonic() - killed >= TTL_S - 1, "a's leases count until its ttl"
        assert await _instances(admin_b, "hold") <= 2


@pytest.mark.timeout(120)
async def test_planes_with_reuse_port_are_gateway_workers_on_one_port(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    app = _app(tmp_path)
    port = str(free_port())
    args = (*_up_args(postgres_schema_url), "--port", port, "--admin-port", "0")
    with lamina_up(app, *args, "--reuse-port") as a, lamina_up(app, *args, "--reuse-port") as b:
        assert a.gateway_url == b.gateway_url == f"http://127.0.0.1:{port}"
        served: Counter[str] = Counter()

        async def both_served() -> bool:
            # A new connection each time: the kernel hands each to one of the two planes.
            async with httpx.AsyncClient(base_url=a.gateway_url, timeout=30) as gw:
                response = await _invoke(gw, "hold", {"s": 0})
            assert response.status_code == 200, response.text
            served[response.json()["admin"]] += 1
            return len(served) == 2

        await until(both_served, "both planes to serve connections to the shared port")
        assert set(served) == {a.admin_url, b.admin_url}
        print(f"requests served per plane: {dict(served)}")

        taken = subprocess.run(  # without --reuse-port the port is refused, clearly
            [*LAMINA, "up", str(app), *args], capture_output=True, text=True, timeout=60
        )
        assert taken.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr, taken.stderr


def test_reuse_port_without_postgresql_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [*LAMINA, "up", str(_app(tmp_path)), "--port", "0", "--reuse-port"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "--reuse-port needs a PostgreSQL --store" in done.stderr, done.stderr


def _tick_s(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


@pytest.mark.timeout(150)
async def test_sigkill_of_one_plane_loses_no_accepted_event_and_fires_no_tick_twice(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    app = _app(tmp_path)
    deliveries, ticks = tmp_path / "deliveries.jsonl", tmp_path / "ticks.jsonl"
    accepted: set[str] = set()

    async def send_events(
        gw: httpx.AsyncClient, admin: httpx.AsyncClient, n: int, label: str
    ) -> None:
        """`n` async invocations and n/4 queue messages, 8 at a time; records the accepted."""
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with sem:
                if i % 4 == 0:
                    body = f"{label}-job-{i}"
                    sent = await admin.post("/queues/jobs/messages", json={"body": body})
                    assert sent.status_code == 201, sent.text
                    accepted.add(body)
                response = await _invoke(gw, "record", {"i": i}, kind="Event")
                assert response.status_code == 202, response.text
                accepted.add(response.headers["x-amzn-requestid"])

        await asyncio.gather(*(one(i) for i in range(n)))

    async with _two_planes(app, postgres_schema_url) as (a, b, gw_a, gw_b, admin_a, admin_b):
        await asyncio.gather(
            send_events(gw_a, admin_a, 300, "a"), send_events(gw_b, admin_b, 300, "b")
        )
        await until(lambda: len(jsonl(deliveries)) >= 60, "some deliveries")
        by_a_before = sum(d["plane"] == a.gateway_url for d in jsonl(deliveries))
        _kill(a)
        killed_s = time.time()
        pending = len(accepted) - len(jsonl(deliveries))
        assert pending >= 300, "hundreds of accepted events must still be pending"
        await send_events(gw_b, admin_b, 100, "b-after")  # b carries on accepting
        (tmp_path / "slow").unlink()

        def all_delivered() -> bool:
            return {d["id"] for d in jsonl(deliveries)} >= accepted

        await until(all_delivered, "every accepted event", deadline_s=90)

        def b_ticks_after_kill() -> bool:
            return (
                sum(
                    _tick_s(t["time"]) > killed_s + TTL_S and t["plane"] == b.gateway_url
                    for t in jsonl(ticks)
                )
                >= 3
            )

        await until(b_ticks_after_kill, "b to go on firing ticks")

    seen = Counter(d["id"] for d in jsonl(deliveries))
    assert set(seen) == accepted, "nothing accepted is lost and nothing unknown delivered"
    assert by_a_before > 0, "plane a was doing its share of the work when it was killed"

    planes_of: dict[int, list[str]] = defaultdict(list)
    for t in jsonl(ticks):
        planes_of[_tick_s(t["time"])].append(t["plane"])
    twice = {s: p for s, p in planes_of.items() if len(p) > 1}
    assert all(a.gateway_url in p and killed_s - 5 <= s <= killed_s for s, p in twice.items()), (
        f"a tick ran twice (only one a was running at its SIGKILL may run again): {twice}"
    )
    first, last = min(planes_of), max(planes_of)
    missing = sorted(set(range(first, last + 1)) - set(planes_of))
    assert len(missing) <= 1 and all(abs(s - killed_s) <= 3 for s in missing), (
        f"ticks lost: {missing} (at most the one plane a claimed as it was killed)"
    )
    print(
        f"{len(accepted)} accepted, {pending} pending at SIGKILL, "
        f"{sum(c - 1 for c in seen.values())} duplicate deliveries; "
        f"{len(planes_of)} ticks, {len(twice)} redelivered, {len(missing)} lost"
    )
