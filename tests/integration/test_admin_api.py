"""The admin API beside the gateway: bearer-token auth, the token file, and `GET /status`."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from harness import client_for, run_platform

pytestmark = pytest.mark.timeout(10)

FUNCTIONS = {
    "hello": {"handler": "basic.hello", "events": [{"http": "GET /hello"}]},
    "idle": {"handler": "basic.hello"},
}


async def test_requests_without_the_right_token_are_refused_with_401(
    app_dir: Callable[..., Path],
) -> None:
    async with (
        run_platform(app_dir(FUNCTIONS)) as platform,
        httpx.AsyncClient(base_url=platform.admin_url, timeout=5) as admin,
    ):
        missing = await admin.get("/status")
        wrong = await admin.get("/status", headers={"authorization": "Bearer not-the-token"})
        not_bearer = await admin.get("/status", headers={"authorization": platform.token})
        unknown_path = await admin.get("/secrets")
    for response in (missing, wrong, not_bearer, unknown_path):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/json"
        assert "Unauthorized" in response.json()["message"]
        assert platform.token not in response.text
    assert "missing" in missing.json()["message"]
    assert "wrong" in wrong.json()["message"]


async def test_status_lists_every_function_with_live_instances_and_cold_starts(
    app_dir: Callable[..., Path],
) -> None:
    async with run_platform(app_dir(FUNCTIONS)) as platform:
        auth = {"authorization": f"Bearer {platform.token}"}
        async with (
            httpx.AsyncClient(base_url=platform.admin_url, headers=auth, timeout=5) as admin,
            client_for(platform) as client,
        ):
            before = await admin.get("/status")
            assert (await client.get("/hello")).status_code == 200
            after = await admin.get("/status")
    assert before.status_code == 200
    assert after.status_code == 200
    assert after.json()["gateway"] == platform.gateway_url
    by_id = {f["id"]: f for f in after.json()["functions"]}
    assert set(by_id) == {"svc.hello", "svc.idle"}
    assert {f["id"]: f["instances"] for f in before.json()["functions"]} == {
        "svc.hello": 0,
        "svc.idle": 0,
    }
    hello = by_id["svc.hello"]
    assert (hello["instances"], hello["busy"], hello["cold_starts"]) == (1, 0, 1)
    idle = by_id["svc.idle"]
    assert (idle["instances"], idle["busy"], idle["cold_starts"]) == (0, 0, 0)


async def test_the_generated_token_is_in_a_private_file_and_survives_a_restart(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir(FUNCTIONS)
    token_file = app / ".lamina" / "admin-token"
    async with run_platform(app) as platform:
        first_token = platform.token
        assert token_file.read_text().strip() == first_token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        async with httpx.AsyncClient(base_url=platform.admin_url, timeout=5) as admin:
            ok = await admin.get("/status", headers={"authorization": f"Bearer {first_token}"})
        assert ok.status_code == 200
    async with run_platform(app) as again:
        assert again.token == first_token
    assert len(first_token) >= 32


async def test_an_explicit_admin_token_is_the_only_one_accepted(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir(FUNCTIONS)
    async with run_platform(app) as first:  # leaves a generated token in the token file
        generated = first.token
    async with (
        run_platform(app, admin_token="chosen-by-the-operator") as platform,
        httpx.AsyncClient(base_url=platform.admin_url, timeout=5) as admin,
    ):
        chosen = await admin.get(
            "/status", headers={"authorization": "Bearer chosen-by-the-operator"}
        )
        stale = await admin.get("/status", headers={"authorization": f"Bearer {generated}"})
    assert chosen.status_code == 200
    assert {f["id"] for f in chosen.json()["functions"]} == {"svc.hello", "svc.idle"}
    assert stale.status_code == 401
