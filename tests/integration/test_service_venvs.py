"""Per-service dependencies on the real platform: services that declare `requirements:` run in
environments of their own, built from PyPI with uv and cached, so two services can pin
different versions of one library (six here: tiny, pure Python, with `__version__`).

The environment cache is shared by the tests of this session (`venv_dir`), as it is shared by
a user's apps: each test asserts what it sees whatever an earlier test left in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import LAMINA, client_for, until

from lamina.control import Platform, PlatformOptions
from lamina.control.dev import Reloader, ReloadReport
from lamina.control.venvs import MARKER, VenvEvent
from lamina.errors import PlatformError, RequirementsError
from lamina.manifest import load_app

pytestmark = pytest.mark.timeout(180)

PINNED = """\
import importlib.util
import os
import sys

import six

import lamina


def handler(event, context):
    result = {
        "six": six.__version__,
        "six_file": six.__file__,
        "python": sys.executable,
        "pid": os.getpid(),
        "platform_libraries_visible": importlib.util.find_spec("starlette") is not None,
    }
    if event.get("sdk"):
        notes = lamina.table("notes")
        notes.put({"id": "n1", "six": six.__version__})
        with lamina.sql() as conn:
            rows = conn.execute("SELECT 40 + 2").fetchall()
        result["table"] = notes.get("n1")
        result["sql"] = rows[0][0]
        result["invoked"] = lamina.invoke("plain.version", {})
        result["sent"] = lamina.send("jobs", {"from": "a"})
        result["published"] = lamina.publish("news", {"from": "a"})
    return result
"""

PLAIN = """\
import importlib.util
import sys


def version(event, context):
    if importlib.util.find_spec("six") is None:
        return {"six": None, "python": sys.executable}
    import six

    return {"six": six.__version__, "python": sys.executable}


def sink(event, context):
    return None
"""


def write_app(root: Path, pins: dict[str, str]) -> Path:
    """Services `a` and `b`, each pinning six as `pins` says, and `plain` without requirements."""
    services: dict[str, Any] = {}
    for name, pin in pins.items():
        folder = root / "services" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "handlers.py").write_text(PINNED)
        (folder / "requirements.txt").write_text(f"{pin}\n")
        services[name] = {
            "path": f"services/{name}",
            "requirements": "requirements.txt",
            "tables": {"notes": {"key": "id"}},
            "functions": {
                # preload: the zygote imports six before forking, from the service's environment
                "v": {"handler": "handlers.handler", "preload": ["six"], "timeout": 10},
            },
        }
    plain = root / "services" / "plain"
    plain.mkdir(parents=True, exist_ok=True)
    (plain / "handlers.py").write_text(PLAIN)
    services["plain"] = {
        "path": "services/plain",
        "functions": {
            "version": {"handler": "handlers.version"},
            "sink": {"handler": "handlers.sink", "events": [{"queue": "jobs"}, {"topic": "news"}]},
        },
    }
    (root / "lamina.yaml").write_text(yaml.safe_dump({"app": "pins", "services": services}))
    return root


@contextlib.asynccontextmanager
async def platform_for(
    root: Path,
    venv_dir: Path,
    events: list[VenvEvent] | None = None,
    store: str | None = None,
    **executor: Any,
) -> AsyncIterator[Platform]:
    options = PlatformOptions(
        port=0,
        state_dir=root / ".lamina",
        grace_s=5.0,
        venv_dir=venv_dir,
        store_url=store,
        **executor,
    )
    progress = events.append if events is not None else None
    platform = Platform(load_app(root), options, venv_progress=progress)
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()


async def invoke(client: httpx.AsyncClient, function_id: str, payload: Any = None) -> Any:
    response = await client.post(
        f"/2015-03-31/functions/{function_id}/invocations", json=payload or {}
    )
    assert response.status_code == 200, response.text
    assert "x-amz-function-error" not in response.headers, response.text
    return response.json()


def platform_six() -> str | None:
    try:
        return importlib.metadata.version("six")
    except importlib.metadata.PackageNotFoundError:
        return None


async def test_two_services_pin_different_versions_of_one_library(
    tmp_path: Path, venv_dir: Path, store_url: str | None
) -> None:
    root = write_app(tmp_path / "app", {"a": "six==1.15.0", "b": "six==1.16.0"})
    events: list[VenvEvent] = []
    async with (
        platform_for(root, venv_dir, events, store_url) as platform,
        client_for(platform) as c,
    ):
        a = await invoke(c, "a.v", {"sdk": True})
        b = await invoke(c, "b.v")
        plain = await invoke(c, "plain.version")

    assert {e.service for e in events if e.state in ("built", "reused")} == {"a", "b"}
    assert (a["six"], b["six"]) == ("1.15.0", "1.16.0")
    assert plain["six"] == platform_six() not in ("1.15.0", "1.16.0")
    paths = {e.service: e.path for e in events}
    for body, service in ((a, "a"), (b, "b")):
        assert body["python"] == str(paths[service] / "bin" / "python")
        assert Path(body["six_file"]).is_relative_to(paths[service])
        assert body["platform_libraries_visible"] is False  # only its own site-packages
    assert plain["python"] == sys.executable  # no requirements: the platform's environment
    # Lamina's runtime works inside the environment: tables, SQL, invoke, send, publish.
    assert a["table"] == {"id": "n1", "six": "1.15.0"}
    assert a["sql"] == 42
    assert a["invoked"] == plain
    assert isinstance(a["sent"], str) and isinstance(a["published"], str)


async def test_a_second_start_reuses_the_environment(tmp_path: Path, venv_dir: Path) -> None:
    root = write_app(tmp_path / "app", {"a": "six==1.15.0"})
    first: list[VenvEvent] = []
    async with platform_for(root, venv_dir, first):
        pass
    (built,) = [e for e in first if e.state in ("built", "reused")]
    marker = built.path / MARKER
    stamp = (marker.stat().st_mtime_ns, built.path.stat().st_ino)

    second: list[VenvEvent] = []
    async with platform_for(root, venv_dir, second) as platform, client_for(platform) as client:
        assert (await invoke(client, "a.v"))["six"] == "1.15.0"

    assert [(e.service, e.state, e.path) for e in second] == [("a", "reused", built.path)]
    assert (marker.stat().st_mtime_ns, built.path.stat().st_ino) == stamp  # not rebuilt


async def test_on_ray_a_service_runs_in_its_environment_with_lamina_working(
    tmp_path: Path, venv_dir: Path, ray_cluster: str
) -> None:
    root = write_app(tmp_path / "app", {"a": "six==1.15.0"})
    events: list[VenvEvent] = []
    async with (
        platform_for(root, venv_dir, events, executor="ray", ray_address=ray_cluster) as platform,
        client_for(platform) as client,
    ):
        a = await invoke(client, "a.v", {"sdk": True})
        plain = await invoke(client, "plain.version")
        [function] = [f for f in platform.status()["functions"] if f["id"] == "a.v"]
        [placed] = function["placement"]
    (built,) = [e for e in events if e.state in ("built", "reused")]
    assert a["six"] == "1.15.0" and a["pid"] == placed["pid"]
    # This node is the platform's machine: the actor uses the environment the platform built.
    assert a["python"] == str(built.path / "bin" / "python")
    assert a["platform_libraries_visible"] is False
    assert plain["python"] == sys.executable
    assert (a["table"], a["sql"], a["invoked"]) == ({"id": "n1", "six": "1.15.0"}, 42, plain)


async def test_a_ray_node_without_the_platforms_environment_builds_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lamina.executor.ray.venv import node_venv

    code = tmp_path / "unpacked"  # the service's code as a node unpacks it
    code.mkdir()
    (code / "requirements.txt").write_text("six==1.15.0\n")
    node_cache = tmp_path / "node-cache"
    monkeypatch.setenv("LAMINA_VENV_DIR", str(node_cache))  # the node's own cache

    venv = await node_venv("a", code, "requirements.txt", "/elsewhere/venvs/0123456789ab")
    again = await node_venv("a", code, "requirements.txt", "/elsewhere/venvs/0123456789ab")

    assert venv.parent == node_cache and again == venv
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import six; print(six.__version__)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stdout.strip() == "1.15.0", done.stderr


async def test_on_ray_requirements_outside_the_service_folder_are_refused_at_start(
    tmp_path: Path, venv_dir: Path, ray_cluster: str
) -> None:
    root = write_app(tmp_path / "app", {"a": "six==1.15.0"})
    (root / "shared.txt").write_text("six==1.15.0\n")
    (root / "services" / "a" / "requirements.txt").write_text("-r ../../shared.txt\n")
    with pytest.raises(PlatformError) as caught:
        async with platform_for(root, venv_dir, executor="ray", ray_address=ray_cluster):
            pytest.fail("the platform started with requirements the nodes cannot get")
    assert str(caught.value) == (
        "a.v: on the ray executor a service's requirements travel with its code, so "
        f"{root / 'shared.txt'} (from requirements: {root / 'services/a/requirements.txt'}) "
        f"must be inside the service folder {root / 'services/a'}"
    )


async def test_a_requirement_that_cannot_be_installed_stops_the_start(
    tmp_path: Path, venv_dir: Path
) -> None:
    root = write_app(tmp_path / "app", {"a": "six==1.15.0", "b": "lamina-no-such-package-0xdead"})
    events: list[VenvEvent] = []
    with pytest.raises(RequirementsError) as info:
        async with platform_for(root, venv_dir, events):
            pytest.fail("the platform started with a service whose requirements failed")

    error = info.value
    assert (error.service, error.requirements) == ("b", "services/b/requirements.txt")
    assert str(error).startswith("service b: cannot install services/b/requirements.txt: `uv ")
    assert "lamina-no-such-package-0xdead" in error.output  # uv's own explanation
    assert not (root / ".lamina" / "platform.json").exists()  # never served
    failed = events[-1]
    assert (failed.service, failed.state) == ("b", "failed")
    assert not failed.path.exists()  # no half-built environment is kept


def test_lamina_up_shows_the_build_and_names_what_failed(tmp_path: Path, venv_dir: Path) -> None:
    root = write_app(tmp_path / "app", {"a": "six==1.15.0", "b": "lamina-no-such-package-0xdead"})
    done = subprocess.run(
        [*LAMINA, "up", str(root), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LAMINA_VENV_DIR": str(venv_dir), "COLUMNS": "300"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "service a: environment " in done.stdout  # built, or reused from an earlier test
    assert "installing services/b/requirements.txt for service b with uv" in done.stdout
    assert "✗ service b: environment not built from services/b/requirements.txt" in done.stdout
    assert (
        "error: service b: cannot install services/b/requirements.txt: `uv pip install"
        in done.stderr
    )
    assert "lamina-no-such-package-0xdead" in done.stderr


class Dev:
    """A running platform with a `Reloader`, as `lamina dev` runs it, and the reports it gave."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.reports: list[ReloadReport] = []
        self.reloader = Reloader(platform, self.reports.append)

    async def edit(self, path: Path, text: str) -> ReloadReport:
        """Write `path` and wait until the reloader has dealt with it; its last report."""
        done = self.reloader.reloads
        path.write_text(text)
        await until(lambda: self.reloader.reloads > done, f"a reload after {path}", 120)
        return self.reports[-1]


@contextlib.asynccontextmanager
async def dev_for(root: Path, venv_dir: Path) -> AsyncIterator[tuple[Dev, httpx.AsyncClient]]:
    async with platform_for(root, venv_dir) as platform, client_for(platform) as client:
        dev = Dev(platform)
        dev.reloader.start()
        try:
            await asyncio.wait_for(dev.reloader.ready.wait(), 10)
            yield dev, client
        finally:
            await dev.reloader.stop()


async def test_lamina_dev_rebuilds_an_edited_requirements_file_for_its_service_only(
    tmp_path: Path, venv_dir: Path
) -> None:
    root = write_app(tmp_path / "app", {"a": "six==1.15.0", "b": "six==1.16.0"})
    requirements = root / "services" / "a" / "requirements.txt"
    async with dev_for(root, venv_dir) as (dev, client):
        b = await invoke(client, "b.v")

        report = await dev.edit(requirements, "six==1.14.0\n")
        assert report.ok, report
        assert report.message.startswith(
            "reloaded service a with its new environment (1 function) in"
        )
        assert (await invoke(client, "a.v"))["six"] == "1.14.0"
        assert await invoke(client, "b.v") == b  # the same instance: b was not recycled

        report = await dev.edit(requirements, "lamina-no-such-package-0xdead\n")
        assert not report.ok
        assert report.message == (
            "service a: services/a/requirements.txt not installed; "
            "still serving its previous environment"
        )
        assert "lamina-no-such-package-0xdead" in report.detail
        assert (await invoke(client, "a.v"))["six"] == "1.14.0"


async def test_lamina_dev_builds_requirements_a_manifest_edit_adds(
    tmp_path: Path, venv_dir: Path
) -> None:
    root = write_app(tmp_path / "app", {"a": "six==1.15.0"})
    (root / "services" / "plain" / "requirements.txt").write_text("six==1.16.0\n")
    manifest = yaml.safe_load((root / "lamina.yaml").read_text())
    async with dev_for(root, venv_dir) as (dev, client):
        assert (await invoke(client, "plain.version"))["python"] == sys.executable
        a = await invoke(client, "a.v")

        manifest["services"]["plain"]["requirements"] = "requirements.txt"
        report = await dev.edit(root / "lamina.yaml", yaml.safe_dump(manifest))

        assert report.ok, report
        assert report.message.startswith("applied lamina.yaml (2 functions recycled) in")
        plain = await invoke(client, "plain.version")
        assert plain["six"] == "1.16.0"
        venv = dev.platform.venvs.path("plain")
        assert venv is not None and plain["python"] == str(venv / "bin" / "python")
        assert await invoke(client, "a.v") == a  # untouched
