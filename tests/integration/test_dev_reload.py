"""`lamina dev`: hot reload of code and manifest on the real platform, with real file edits
seen by the real watcher."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml
from harness import LAMINA, client_for, until

from lamina.control import Platform, PlatformOptions
from lamina.control.dev import Reloader, ReloadReport
from lamina.manifest import load_app

pytestmark = pytest.mark.timeout(90)


def _code(version: str) -> str:
    return (
        "import os\n\n"
        f"VERSION = {version!r}\n\n\n"
        "def handler(event, context):\n"
        '    return {"version": VERSION, "pid": os.getpid()}\n'
    )


def _manifest(extra_routes: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "app": "dev",
        "services": {
            "users": {
                "path": "services/users",
                "functions": {
                    "get": {
                        "handler": "handlers.handler",
                        "max_instances": 4,
                        "events": [{"http": "GET /users"}, *({"http": r} for r in extra_routes)],
                    }
                },
            },
            "orders": {
                "path": "services/orders",
                "functions": {
                    "get": {"handler": "handlers.handler", "events": [{"http": "GET /orders"}]}
                },
            },
        },
    }


def _write_app(root: Path) -> Path:
    for service in ("users", "orders"):
        (root / "services" / service).mkdir(parents=True)
        (root / "services" / service / "handlers.py").write_text(_code(f"{service}-1"))
    (root / "lamina.yaml").write_text(yaml.safe_dump(_manifest(), sort_keys=False))
    return root


class Dev:
    """A platform with a reloader, and the reports the reloader gave."""

    def __init__(self, root: Path, platform: Platform, reloader: Reloader) -> None:
        self.root = root
        self.platform = platform
        self.reloader = reloader
        self.reports: list[ReloadReport] = []

    async def edit(self, relative: str, text: str) -> ReloadReport:
        """Write a file and wait until the reloader has dealt with it; its last report."""
        done = self.reloader.reloads
        (self.root / relative).write_text(text)
        await until(lambda: self.reloader.reloads > done, f"a reload after editing {relative}")
        return self.reports[-1]


@contextlib.asynccontextmanager
async def dev_platform(
    root: Path, parameters: dict[str, str] | None = None, **executor: Any
) -> AsyncIterator[Dev]:
    options = PlatformOptions(port=0, state_dir=root / ".lamina", grace_s=5.0, **executor)
    platform = Platform(load_app(root, parameters=parameters), options)
    await platform.start()
    reloader = Reloader(platform, lambda r: dev.reports.append(r), parameters=parameters)
    dev = Dev(root, platform, reloader)
    try:
        dev.reloader.start()
        await asyncio.wait_for(dev.reloader.ready.wait(), 10)
        yield dev
    finally:
        await dev.reloader.stop()
        await platform.stop()


async def _get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_code_edit_reloads_only_its_service(
    tmp_path: Path, executor: dict[str, Any]
) -> None:
    async with (
        dev_platform(_write_app(tmp_path), **executor) as dev,
        client_for(dev.platform) as client,
    ):
        before = await _get(client, "/users")
        orders = await _get(client, "/orders")
        assert before["version"] == "users-1"

        report = await dev.edit("services/users/handlers.py", _code("users-2"))

        assert report.ok and report.message.startswith("reloaded service users (1 function) in")
        after = await _get(client, "/users")
        assert after["version"] == "users-2" and after["pid"] != before["pid"]
        assert await _get(client, "/orders") == orders  # same code, same instance
        await until(lambda: not psutil.pid_exists(before["pid"]), "the old instance to stop")
        [users] = [f for f in dev.platform.status()["functions"] if f["id"] == "users.get"]
        if executor["executor"] == "ray":  # the old actor is gone from its node, the new one runs
            assert [where["pid"] for where in users["placement"]] == [after["pid"]]


async def test_a_syntax_error_keeps_the_old_code_serving_until_fixed(
    tmp_path: Path, executor: dict[str, Any]
) -> None:
    async with (
        dev_platform(_write_app(tmp_path), **executor) as dev,
        client_for(dev.platform) as client,
    ):
        await _get(client, "/users")
        broken = _code("users-2").replace("def handler(event, context):", "def handler(event:")

        report = await dev.edit("services/users/handlers.py", broken)

        assert not report.ok
        assert "service users not reloaded (syntax error)" in report.message
        assert report.detail.startswith("services/users/handlers.py:6: SyntaxError:")
        assert (await _get(client, "/users"))["version"] == "users-1"

        report = await dev.edit("services/users/handlers.py", "import no_such_module\n")
        assert not report.ok and "users.get failed to load" in report.message
        assert "No module named 'no_such_module'" in report.detail
        assert 'handlers.py", line 1' in report.detail
        assert (await _get(client, "/users"))["version"] == "users-1"

        report = await dev.edit("services/users/handlers.py", _code("users-3"))
        assert report.ok
        assert (await _get(client, "/users"))["version"] == "users-3"


async def test_a_manifest_edit_adds_a_route_without_a_restart(tmp_path: Path) -> None:
    async with dev_platform(_write_app(tmp_path)) as dev, client_for(dev.platform) as client:
        users = await _get(client, "/users")
        orders = await _get(client, "/orders")
        assert (await client.get("/people")).status_code == 404

        manifest = yaml.safe_dump(_manifest(extra_routes=("GET /people",)), sort_keys=False)
        report = await dev.edit("lamina.yaml", manifest)

        assert report.ok and report.message.startswith("applied lamina.yaml (+1 route) in")
        assert await _get(client, "/people") == users  # the same instance: not recycled
        assert await _get(client, "/orders") == orders

        report = await dev.edit("lamina.yaml", manifest.replace("max_instances: 4", "max: [4"))
        assert not report.ok and "still serving the last good version" in report.message
        assert "lamina.yaml:9: invalid YAML" in report.detail
        assert await _get(client, "/people") == users


async def test_hot_reload_under_load_loses_no_request(tmp_path: Path) -> None:
    """Four clients send requests back to back while the handler is edited three times: every
    request gets a 200 from the old or the new code, and each edit reaches every client."""
    async with dev_platform(_write_app(tmp_path)) as dev, client_for(dev.platform) as client:
        stop = asyncio.Event()
        seen: list[list[str]] = [[] for _ in range(4)]
        failures: list[str] = []

        async def load(versions: list[str]) -> None:
            while not stop.is_set() or len(versions) < 100:
                response = await client.get("/users")
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    versions.append(response.json()["version"])

        clients = [asyncio.create_task(load(versions)) for versions in seen]
        try:
            await until(lambda: all(len(v) >= 10 for v in seen), "every client under way")
            for version in ("users-2", "users-3", "users-4"):
                report = await dev.edit("services/users/handlers.py", _code(version))
                assert report.ok, report
                await until(
                    lambda v=version: all(s[-1] == v for s in seen), f"clients on {version}"
                )
            stop.set()
            await asyncio.gather(*clients)
        finally:  # a failed assertion must not leave the load running past this test
            for task in clients:
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)

        assert failures == []
        assert sum(len(v) for v in seen) >= 400
        for versions in seen:
            assert set(versions) == {"users-1", "users-2", "users-3", "users-4"}


@contextlib.contextmanager
def lamina_dev(app: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`lamina dev APP --port 0` in a subprocess; its gateway URL once it serves."""
    log = app.parent / "dev.log"
    runtime = app / ".lamina" / "platform.json"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*LAMINA, "dev", str(app), "--port", "0"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 10
        while not runtime.exists() or "watching" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        yield process, json.loads(runtime.read_bytes())["gateway_url"], log
    finally:
        process.terminate()
        process.wait(15)


async def test_lamina_dev_prints_a_status_line_per_reload(tmp_path: Path) -> None:
    root = _write_app(tmp_path / "app")
    with lamina_dev(root) as (process, url, log):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert (await _get(client, "/users"))["version"] == "users-1"
            (root / "services/users/handlers.py").write_text(_code("users-2"))
            await until(lambda: "reloaded service users" in log.read_text(), "the status line")
            assert (await _get(client, "/users"))["version"] == "users-2"
    assert process.returncode == 0
    assert "watching" in log.read_text()
