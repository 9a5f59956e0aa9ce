"""Deploys to a running platform: versions, aliases, canary splits, rollback, draining, and
their survival across a restart, on the real platform with real instance processes."""

from __future__ import annotations

import asyncio
import io
import os
import random
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml
from harness import client_for, run_platform, until
from test_cli_events import lamina

from lamina.control import Platform
from lamina.control.bundle import make_bundle

pytestmark = pytest.mark.timeout(120)


def _code(tag: str, sleep_s: float = 0.0) -> str:
    return (
        "import os\nimport time\n\n"
        f"TAG = {tag!r}\n\n\n"
        "def handler(event, context):\n"
        f"    time.sleep({sleep_s} if (event.get('rawPath') or '').endswith('slow') else 0)\n"
        "    return {\n"
        '        "tag": TAG,\n'
        '        "version": context.function_version,\n'
        '        "env_version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],\n'
        '        "pid": os.getpid(),\n'
        "    }\n"
    )


def _manifest(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "app": "shop",
        "services": {
            "orders": {
                "path": "services/orders",
                "functions": {
                    "create": {
                        "handler": "handlers.handler",
                        "timeout": 10,
                        "events": [{"http": "GET /orders"}, {"http": "GET /orders/slow"}],
                        **(extra or {}),
                    }
                },
            },
            "users": {
                "path": "services/users",
                "functions": {
                    "get": {"handler": "handlers.handler", "events": [{"http": "GET /users"}]}
                },
            },
        },
    }


def _write(root: Path, orders: str = "orders-1", users: str = "users-1", **extra: Any) -> Path:
    for service, tag in (("orders", orders), ("users", users)):
        folder = root / "services" / service
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "handlers.py").write_text(_code(tag, sleep_s=1.0))
    (root / "lamina.yaml").write_text(yaml.safe_dump(_manifest(extra), sort_keys=False))
    return root


def _admin(platform: Platform) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=platform.admin_url,
        headers={"Authorization": f"Bearer {platform.token}"},
        timeout=30,
    )


async def _deploy(platform: Platform, root: Path, promote: bool = True) -> dict[str, Any]:
    async with _admin(platform) as admin:
        response = await admin.post(
            "/deploys",
            params={"promote": str(promote).lower()},
            content=make_bundle(root),
            headers={"content-type": "application/gzip"},
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _versions(outcome: dict[str, Any]) -> dict[str, tuple[int, bool]]:
    return {f["id"]: (f["version"], f["changed"]) for f in outcome["functions"]}


async def test_a_deploy_serves_new_versions_and_keeps_unchanged_ones(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    async with run_platform(root) as platform, client_for(platform) as client:
        before = await _get(client, "/orders")
        assert (before["tag"], before["version"], before["env_version"]) == (
            "orders-1",
            "$LATEST",
            "$LATEST",
        )

        first = await _deploy(platform, root)
        assert _versions(first) == {"orders.create": (1, True), "users.get": (1, True)}
        assert (await _get(client, "/orders"))["version"] == "1"

        users_v1 = await _get(client, "/users")
        _write(root, orders="orders-2")  # only the orders service's code changes
        second = await _deploy(platform, root)

        assert _versions(second) == {"orders.create": (2, True), "users.get": (1, False)}
        orders = await _get(client, "/orders")
        assert (orders["tag"], orders["version"], orders["env_version"]) == ("orders-2", "2", "2")
        users = await _get(client, "/users")
        assert (users["tag"], users["version"]) == ("users-1", "1")
        assert users["pid"] == users_v1["pid"]  # the same instance serves on

        # a config change alone is a new version too
        _write(root, orders="orders-2", memory=256)
        third = await _deploy(platform, root)
        assert _versions(third)["orders.create"] == (3, True)
        assert _versions(third)["users.get"] == (1, False)

        async with _admin(platform) as admin:
            listed = (await admin.get("/functions/orders.create/versions")).json()
            aliases = (await admin.get("/aliases", params={"function": "orders.create"})).json()
        assert [v["version"] for v in listed] == [1, 2, 3]
        assert [v["memory"] for v in listed] == [128, 128, 256]
        assert [(a["name"], a["version"], a["previous_version"]) for a in aliases] == [
            ("live", 3, 2)
        ]


async def test_every_invocation_record_names_its_version(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    async with run_platform(root) as platform, client_for(platform) as client:
        latest = await client.get("/orders")
        await _deploy(platform, root)
        deployed = await client.get("/orders")
        assert platform.recorder is not None
        await platform.recorder.flush()  # what is buffered is written now: no waiting
        async with _admin(platform) as admin:
            listed = await admin.get("/invocations", params={"function": "orders.create"})
        records = listed.json()
        versions = {r["request_id"]: r["version"] for r in records}
        assert versions == {
            latest.headers["x-amzn-requestid"]: "$LATEST",
            deployed.headers["x-amzn-requestid"]: "1",
        }


async def test_a_canary_gets_its_weight_of_2000_requests(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    async with (
        run_platform(root, rng=random.Random(8)) as platform,
        client_for(platform) as client,
    ):
        await _deploy(platform, root)
        _write(root, orders="orders-2")
        staged = await _deploy(platform, root, promote=False)
        assert _versions(staged)["orders.create"] == (2, True)
        assert (await _get(client, "/orders"))["version"] == "1"  # not promoted

        async with _admin(platform) as admin:
            response = await admin.put(
                "/functions/orders.create/aliases/live",
                json={"version": 1, "canary": 2, "weight": 10},
            )
        assert response.status_code == 200, response.text

        gate = asyncio.Semaphore(8)

        async def one() -> str:
            async with gate:
                return str((await _get(client, "/orders"))["version"])

        served = Counter(await asyncio.gather(*(one() for _ in range(2000))))
        assert set(served) == {"1", "2"}
        assert 0.07 <= served["2"] / 2000 <= 0.13, served


async def test_rollback_is_immediate_and_old_versions_drain(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    async with run_platform(root) as platform, client_for(platform) as client:
        await _deploy(platform, root)
        v1 = await _get(client, "/orders")
        v1_zygote = psutil.Process(v1["pid"]).ppid()
        assert v1_zygote != os.getpid()  # forked from its version's zygote
        slow = asyncio.create_task(client.get("/orders/slow"))  # in flight on version 1
        await until(
            lambda: platform.invoker and platform.invoker.pools["orders.create:1"].in_flight,
            "the slow invocation to start",
        )
        _write(root, orders="orders-2")
        await _deploy(platform, root)

        assert (await _get(client, "/orders"))["tag"] == "orders-2"
        finished = await slow  # version 1 finished what it had accepted
        assert finished.status_code == 200 and finished.json()["version"] == "1"
        assert platform.invoker is not None
        await until(
            lambda: not any(psutil.pid_exists(p) for p in (v1["pid"], v1_zygote)),
            "version 1's instance and zygote to stop",
        )
        assert "orders.create:1" not in platform.invoker.pools
        status = {f["id"]: f for f in platform.status()["functions"]}
        assert [v["version"] for v in status["orders.create"]["versions"]] == ["2"]

        async with _admin(platform) as admin:
            rolled = await admin.post("/functions/orders.create/aliases/live/rollback")
        assert rolled.status_code == 200, rolled.text
        assert (rolled.json()["version"], rolled.json()["previous_version"]) == (1, 2)
        again = await _get(client, "/orders")  # the very next request
        assert (again["tag"], again["version"]) == ("orders-1", "1")
        assert again["pid"] != v1["pid"]  # a new instance: version 1 had stopped


async def test_versions_and_aliases_survive_a_restart(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    async with run_platform(root) as platform:
        await _deploy(platform, root)
        _write(root, orders="orders-2", users="users-2")
        await _deploy(platform, root)
        async with _admin(platform) as admin:
            canary = {"version": 2, "canary": 1, "weight": 50}
            response = await admin.put("/functions/users.get/aliases/live", json=canary)
            assert response.status_code == 200, response.text
    _write(root, orders="orders-3-not-deployed")
    async with (
        run_platform(root, rng=random.Random(1)) as platform,
        client_for(platform) as client,
    ):
        orders = await _get(client, "/orders")
        assert (orders["tag"], orders["version"]) == ("orders-2", "2")
        users = Counter([(await _get(client, "/users"))["tag"] for _ in range(40)])
        assert set(users) == {"users-1", "users-2"}  # each version runs its own code
        async with _admin(platform) as admin:
            listed = (await admin.get("/functions/orders.create/versions")).json()
            rolled = await admin.post("/functions/orders.create/aliases/live/rollback")
        assert [v["version"] for v in listed] == [1, 2]
        assert rolled.status_code == 200
        assert (await _get(client, "/orders"))["tag"] == "orders-1"


async def test_versions_survive_a_restart_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    root = _write(tmp_path / "app")
    joiner = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{joiner}lamina_schema=deploys_{random.randrange(10**9)}"
    async with run_platform(root, store_url=url) as platform:
        await _deploy(platform, root)
    async with run_platform(root, store_url=url) as platform, client_for(platform) as client:
        assert (await _get(client, "/users"))["version"] == "1"


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


async def test_unsafe_or_invalid_bundles_are_refused_and_change_nothing(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    broken = _write(tmp_path / "broken")
    (broken / "lamina.yaml").write_text(yaml.safe_dump(_manifest({"timeout": 0}), sort_keys=False))
    link = tarfile.TarInfo("services/orders/secrets")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    async with (
        run_platform(root, max_bundle_bytes=4096) as platform,
        client_for(platform) as client,
        _admin(platform) as admin,
    ):
        traversal = await admin.post(
            "/deploys", content=_tar([(tarfile.TarInfo("../evil.py"), b"x = 1\n")])
        )
        symlink = await admin.post("/deploys", content=_tar([(link, b"")]))
        manifest = await admin.post("/deploys", content=make_bundle(broken))
        big = await admin.post("/deploys", content=random.randbytes(5000))
        unauthorized = await client.post(f"{platform.admin_url}/deploys", content=make_bundle(root))

        assert traversal.status_code == 400
        assert traversal.json()["message"] == (
            "bundle member '../evil.py': '..' in a path is not allowed"
        )
        assert symlink.status_code == 400
        assert "'services/orders/secrets'" in symlink.json()["message"]
        assert "leads outside the bundle" in symlink.json()["message"]
        assert manifest.status_code == 400
        assert (
            manifest.json()["message"].startswith("lamina.yaml:")
            and "services.orders.functions.create.timeout" in manifest.json()["message"]
        )
        assert big.status_code == 413
        assert "larger than the limit" in big.json()["message"]
        assert unauthorized.status_code == 401
        assert (await admin.get("/aliases")).json() == []
        assert (await _get(client, "/orders"))["version"] == "$LATEST"


async def test_routes_and_the_invoke_api_target_aliases_and_versions(tmp_path: Path) -> None:
    beta_route = {"http": {"route": "GET /beta/orders", "alias": "beta"}}
    events = [{"http": "GET /orders"}, beta_route]
    root = _write(tmp_path / "app", events=events)
    async with run_platform(root) as platform, client_for(platform) as client:
        await _deploy(platform, root)
        missing = await client.get("/beta/orders")  # no alias beta yet
        _write(root, orders="orders-2", events=events)
        await _deploy(platform, root, promote=False)
        async with _admin(platform) as admin:
            response = await admin.put("/functions/orders.create/aliases/beta", json={"version": 2})
            assert response.status_code == 200, response.text
            no_version = await admin.put(
                "/functions/orders.create/aliases/beta", json={"version": 9}
            )

        async def invoke(name: str, **params: str) -> httpx.Response:
            return await client.post(
                f"/2015-03-31/functions/{name}/invocations", params=params, json={}
            )

        by_alias = await invoke("orders.create:beta")
        by_qualifier = await invoke("orders.create", Qualifier="1")
        by_live = await invoke("orders.create")
        unknown_alias = await invoke("orders.create:gamma")
        stopped_version = await invoke("orders.create", Qualifier="3")

        assert missing.status_code == 502
        assert "has no alias 'beta'" in missing.headers["x-lamina-error-message"]
        assert no_version.status_code == 404
        assert no_version.json()["message"] == ("orders.create has no version 9 (versions: 1, 2)")
        assert (await _get(client, "/beta/orders"))["version"] == "2"
        assert (await _get(client, "/orders"))["version"] == "1"
        assert (by_alias.json()["version"], by_alias.headers["x-amz-executed-version"]) == (
            "2",
            "2",
        )
        assert by_qualifier.json()["version"] == "1"
        assert by_live.headers["x-amz-executed-version"] == "1"
        assert unknown_alias.status_code == 404 and stopped_version.status_code == 404


async def test_the_cli_deploys_lists_moves_aliases_and_rolls_back(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    async with run_platform(root) as platform, client_for(platform) as client:
        where = ["--admin-url", platform.admin_url, "--token", platform.token]
        first = await lamina("deploy", str(root), *where)
        _write(root, orders="orders-2")
        second = await lamina("deploy", str(root), "--no-promote", *where)
        canary = await lamina(
            "alias", "set", "orders.create", "live", "--version", "1", "--canary", "2",
            "--weight", "10", *where,
        )  # fmt: skip
        listed = await lamina("versions", "orders.create", *where)
        aliases = await lamina("alias", "ls", *where)
        promoted = await lamina("alias", "set", "orders.create", "live", "--version", "2", *where)
        rolled = await lamina("rollback", "orders.create", *where)
        served = await _get(client, "/orders")
        again = await lamina("rollback", "orders.create", "--alias", "nope", *where)
        bad_dir = await lamina("deploy", str(tmp_path), *where)
        assert platform.recorder is not None
        await platform.recorder.flush()
        invocations = await lamina("invocations", "orders.create", "-C", str(root))

    for code, out, err in (first, second, canary, listed, aliases, promoted, rolled):
        assert code == 0, out + err
    assert ["orders.create", "1", "new"] in _rows(first[1]) and "live moved" in first[1]
    assert ["orders.create", "2", "new"] in _rows(second[1])
    assert ["users.get", "1", "unchanged"] in _rows(second[1]) and "live not moved" in second[1]
    assert canary[1].strip() == "orders.create:live -> version 1, 10% to version 2"
    by_version = {r[0]: r for r in _rows(listed[1]) if r[0].isdecimal()}
    assert by_version["1"][-1] == "live"
    assert by_version["2"][-3:] == ["live", "(canary", "10%)"]
    assert ["orders.create", "live", "1", "2", "(10%)"] in [r[:5] for r in _rows(aliases[1])]
    assert rolled[1].strip() == "orders.create:live -> version 1 (was 2)"
    assert served["version"] == "1"
    assert again[0] == 1 and "orders.create has no alias 'nope' (HTTP 404)" in again[2]
    assert bad_dir[0] == 2 and "no lamina.yaml here" in bad_dir[2]
    assert invocations[0] == 0
    assert [r[2] for r in _rows(invocations[1]) if r[1:2] == ["orders.create"]] == ["1"]


def _rows(text: str) -> list[list[str]]:
    """A printed table's lines as their words (headers and rule included)."""
    return [line.split() for line in text.splitlines() if line.strip()]
