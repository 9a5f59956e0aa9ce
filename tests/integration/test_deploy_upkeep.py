"""Deploys over time: rollback to any kept version, retention of bundles (and what a refused
bundle leaves: nothing), tables a deploy adds, and services' environments built for a
deployed bundle. Real platform, real instance processes, real environment builds (sharing the
session's environment cache with tests/integration/test_service_venvs.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import client_for, run_platform
from test_cli_events import lamina
from test_deploys import _admin, _deploy, _get, _manifest, _rows, _write
from test_service_venvs import write_app as write_pinned

from lamina.control import Platform
from lamina.control.bundle import bundle_digest, make_bundle

pytestmark = pytest.mark.timeout(180)


async def _post_bundle(platform: Platform, root: Path) -> httpx.Response:
    async with _admin(platform) as admin:
        return await admin.post("/deploys", content=make_bundle(root))


def _on_disk(root: Path) -> set[str]:
    """Every file and folder under the platform's deploys folder, relative to it."""
    deploys = root / ".lamina" / "deploys"
    return {p.relative_to(deploys).as_posix() for p in deploys.rglob("*") if p.parent in (
        deploys / "bundles", deploys / "trees")}  # fmt: skip


def _kept(digests: list[str]) -> set[str]:
    return {f"bundles/{d}.tar.gz" for d in digests} | {f"trees/{d}" for d in digests}


async def test_rollback_moves_an_alias_to_any_version_at_once(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    async with run_platform(root) as platform, client_for(platform) as client:
        for tag in ("orders-1", "orders-2", "orders-3"):
            _write(root, orders=tag)
            await _deploy(platform, root)
        async with _admin(platform) as admin:
            to_one = await admin.post(
                "/functions/orders.create/aliases/live/rollback", json={"version": 1}
            )
            served = await _get(client, "/orders")  # the very next request
            missing = await admin.post(
                "/functions/orders.create/aliases/live/rollback", json={"version": 9}
            )
            bad = await admin.post(
                "/functions/orders.create/aliases/live/rollback", json={"version": "two"}
            )
        where = ["--admin-url", platform.admin_url, "--token", platform.token]
        cli = await lamina("rollback", "orders.create", "--to", "2", *where)
        after_cli = await _get(client, "/orders")
        back = await lamina("rollback", "orders.create", *where)  # one step: back to 1
        after_back = await _get(client, "/orders")

    assert to_one.status_code == 200, to_one.text
    assert (to_one.json()["version"], to_one.json()["previous_version"]) == (1, 3)
    assert (served["tag"], served["version"]) == ("orders-1", "1")
    assert missing.status_code == 404
    assert missing.json()["message"] == "orders.create has no version 9 (versions: 1, 2, 3)"
    assert bad.status_code == 400 and "version: expected a version number" in bad.text
    assert cli[0] == 0, cli[1] + cli[2]
    assert cli[1].strip() == "orders.create:live -> version 2 (was 1)"
    assert after_cli["version"] == "2"
    assert back[1].strip() == "orders.create:live -> version 1 (was 2)"
    assert after_back["version"] == "1"


async def test_old_bundles_are_pruned_but_never_one_an_alias_needs(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    digests = []
    async with (
        run_platform(root, keep_deploys=2) as platform,
        client_for(platform) as client,
        _admin(platform) as admin,
    ):
        for tag in ("orders-1", "orders-2", "orders-3", "orders-4"):  # users.get stays at 1
            _write(root, orders=tag)
            digests.append(bundle_digest(make_bundle(root)))
            await _deploy(platform, root)
        listed = (await admin.get("/functions/orders.create/versions")).json()
        users = (await admin.get("/functions/users.get/versions")).json()
        to_pruned = await admin.put("/functions/orders.create/aliases/beta", json={"version": 2})
        to_kept = await admin.put("/functions/orders.create/aliases/beta", json={"version": 1})
        served_users = await _get(client, "/users")
        where = ["--admin-url", platform.admin_url, "--token", platform.token]
        shown = await lamina("versions", "orders.create", *where)

    # Kept: the last 2 deploys (3, 4), and deploy 1, whose bundle holds users.get version 1,
    # which `live` points at. Deploy 2 made only orders.create version 2: pruned.
    assert _on_disk(root) == _kept([digests[0], digests[2], digests[3]])
    assert [(v["version"], v["available"]) for v in listed] == [
        (1, True),
        (2, False),
        (3, True),
        (4, True),
    ]
    assert [(v["version"], v["available"]) for v in users] == [(1, True)]
    assert served_users["version"] == "1"
    assert to_pruned.status_code == 400
    assert to_pruned.json()["message"].startswith(
        f"orders.create version 2 was pruned: its bundle {digests[1][:12]} is no longer kept"
    )
    assert to_kept.status_code == 200, to_kept.text
    assert shown[0] == 0, shown[2]
    rows = {r[0]: r for r in _rows(shown[1]) if r[0].isdecimal()}
    assert "pruned" in rows["2"] and "available" in rows["1"] and "available" in rows["4"]


async def test_a_refused_bundle_leaves_nothing_behind(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")
    bad_manifest = _write(tmp_path / "bad-manifest")
    (bad_manifest / "lamina.yaml").write_text(
        yaml.safe_dump(_manifest({"timeout": 0}), sort_keys=False)
    )
    bad_code = _write(tmp_path / "bad-code", orders="orders-broken")
    (bad_code / "services" / "orders" / "handlers.py").write_text("import no_such_module_0x\n")
    async with run_platform(root) as platform:
        first = await _deploy(platform, root)
        manifest = await _post_bundle(platform, bad_manifest)
        code = await _post_bundle(platform, bad_code)
        again = await _post_bundle(platform, root)  # the deployed bundle, refused by nothing

    assert manifest.status_code == 400, manifest.text
    assert code.status_code == 422, code.text
    assert "orders.create version 2 failed to load" in code.json()["message"]
    assert again.status_code == 201
    assert _on_disk(root) == _kept([first["bundle"]])


_NOTES = """\
import lamina


def handler(event, context):
    notes = lamina.table("notes")
    if "put" in event:
        notes.put(event["put"])
    return {"item": notes.get(event["get"]), "version": context.function_version}
"""


def _with_notes(folder: Path) -> Path:
    """The app of `_write`, plus a service `notes` that owns a table `notes`."""
    _write(folder)
    (folder / "services" / "notes").mkdir(parents=True)
    (folder / "services" / "notes" / "handlers.py").write_text(_NOTES)
    manifest: dict[str, Any] = _manifest()
    manifest["services"]["notes"] = {
        "path": "services/notes",
        "tables": {"notes": {"key": "id"}},
        "functions": {"rw": {"handler": "handlers.handler"}},
    }
    (folder / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


async def _invoke(client: httpx.AsyncClient, function_id: str, payload: Any) -> Any:
    response = await client.post(f"/2015-03-31/functions/{function_id}/invocations", json=payload)
    assert response.status_code == 200, response.text
    assert "x-amz-function-error" not in response.headers, response.text
    return response.json()


async def test_a_deploy_that_adds_a_table_serves_it_without_a_restart(tmp_path: Path) -> None:
    root = _write(tmp_path / "app")  # the platform starts without the notes service
    shipped = _with_notes(tmp_path / "next")
    async with run_platform(root) as platform, client_for(platform) as client:
        outcome = await _deploy(platform, shipped)
        put = await _invoke(client, "notes.rw", {"put": {"id": "n1", "text": "hi"}, "get": "n1"})
        async with _admin(platform) as admin:
            tables = (await admin.get("/tables")).json()
    assert "+1 function" not in outcome["changes"]  # functions get versions, not recycled
    assert put == {"item": {"id": "n1", "text": "hi"}, "version": "1"}
    assert {(t["service"], t["table"], t["items"]) for t in tables} == {("notes", "notes", 1)}

    # A restart serves the last deploy (not the app folder), its tables and their items.
    async with run_platform(root) as platform, client_for(platform) as client:
        got = await _invoke(client, "notes.rw", {"get": "n1"})
    assert got == {"item": {"id": "n1", "text": "hi"}, "version": "1"}


async def test_a_deployed_service_runs_in_the_environment_of_its_requirements(
    tmp_path: Path, venv_dir: Path
) -> None:
    root = write_pinned(tmp_path / "app", {"a": "six==1.15.0"})
    async with (
        run_platform(root, venv_dir=venv_dir) as platform,
        client_for(platform) as client,
    ):
        write_pinned(root, {"a": "six==1.16.0"})
        deployed = await _deploy(platform, root)
        after = await _invoke(client, "a.v", {})
        write_pinned(root, {"a": "lamina-no-such-package-0xdead"})
        refused = await _post_bundle(platform, root)
        still = await _invoke(client, "a.v", {})

    assert {f["id"]: f["version"] for f in deployed["functions"]}["a.v"] == 1
    assert (after["six"], still["six"]) == ("1.16.0", "1.16.0")
    assert Path(after["python"]).is_relative_to(venv_dir)
    assert after["python"] != sys.executable
    assert refused.status_code == 422, refused.text
    message = refused.json()["message"]
    assert message.startswith(
        "a.v version 2 cannot start: service a: cannot install services/a/requirements.txt: "
    ), message
    assert "lamina-no-such-package-0xdead" in message
    assert _on_disk(root) == _kept([deployed["bundle"]])
