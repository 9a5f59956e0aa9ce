"""Gateway security on the real platform: JWT, API keys with plans, a Lambda authorizer, CORS
and rate limits, each allowed and refused the way a client sees it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from harness import HANDLERS, client_for, jsonl, run_platform
from typer.testing import CliRunner

from lamina.cli import app as cli_app

pytestmark = pytest.mark.integration

SECRET = "integration-secret-integration-secret"
MANIFEST = f"""\
app: secure
gateway:
  cors: {{origins: ["https://app.example"], methods: [GET, POST], headers: [authorization, content-type], max_age: 600}}
  auth:
    jwt: {{secret: "${{env:LAMINA_TEST_JWT_SECRET}}", issuer: "https://issuer.example", audience: shop}}
services:
  svc:
    path: {HANDLERS}
    env: {{CALLS_FILE: "{{calls}}"}}
    functions:
      echo:
        handler: secured.echo
        events:
          - http: {{route: POST /orders, auth: jwt, scopes: ["orders:write"]}}
          - http: {{route: "GET /orders/{{id}}", auth: api_key}}
          - http: {{route: GET /admin/stats, auth: {{function: svc.authorize, ttl: 60}}}}
          - http: {{route: GET /limited, rate_limit: {{rate: 0.001, burst: 2}}}}
          - http: GET /public
      authorize:
        handler: secured.authorize
"""  # noqa: E501


def token(**over: object) -> str:
    claims: dict[str, object] = {
        "sub": "user-1",
        "iss": "https://issuer.example",
        "aud": "shop",
        "exp": time.time() + 300,
        "scope": "orders:write",
    }
    claims.update(over)
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAMINA_TEST_JWT_SECRET", SECRET)
    (tmp_path / "app").mkdir()
    calls = tmp_path / "calls.jsonl"
    (tmp_path / "app" / "lamina.yaml").write_text(MANIFEST.replace("{calls}", str(calls)))
    return tmp_path / "app"


async def test_jwt_routes_admit_good_tokens_only(app_dir: Path) -> None:
    async with run_platform(app_dir) as platform, client_for(platform) as client:
        ok = await client.post("/orders", headers={"authorization": f"Bearer {token()}"})
        assert ok.status_code == 200, ok.text
        seen = ok.json()["authorizer"]["jwt"]
        assert seen["claims"]["sub"] == "user-1"
        assert seen["scopes"] == ["orders:write"]

        for headers in (
            {},
            {"authorization": f"Bearer {token(exp=time.time() - 5)}"},
            {"authorization": f"Bearer {token(aud='other')}"},
            {"authorization": f"Bearer {token()}x"},
        ):
            refused = await client.post("/orders", headers=headers)
            assert refused.status_code == 401
            assert refused.json() == {"message": "Unauthorized"}
        forbidden = await client.post(
            "/orders", headers={"authorization": f"Bearer {token(scope='orders:read')}"}
        )
        assert forbidden.status_code == 403
        assert forbidden.json() == {"message": "Forbidden"}


async def test_api_keys_from_the_admin_api_with_revocation_and_quota(app_dir: Path) -> None:
    async with run_platform(app_dir) as platform, client_for(platform) as client:
        auth = {"authorization": f"Bearer {platform.token}"}
        async with httpx.AsyncClient(base_url=platform.admin_url, headers=auth) as admin:
            created = await admin.post("/keys", json={"name": "mobile", "quota_per_day": 2})
            assert created.status_code == 201, created.text
            key, key_id = created.json()["key"], created.json()["id"]
            assert (await client.get("/orders/1")).status_code == 403
            assert (
                await client.get("/orders/1", headers={"x-api-key": "lk_nope"})
            ).status_code == 403
            first = await client.get("/orders/1", headers={"x-api-key": key})
            assert first.status_code == 200, first.text
            assert first.json()["authorizer"]["apiKey"] == {"id": key_id, "name": "mobile"}
            assert (await client.get("/orders/2", headers={"x-api-key": key})).status_code == 200
            over = await client.get("/orders/3", headers={"x-api-key": key})
            assert over.status_code == 429
            assert over.json() == {"message": "Limit Exceeded"}
            assert int(over.headers["retry-after"]) >= 1
            listed = (await admin.get("/keys")).json()
            assert [(k["id"], k["used_today"], "key" in k) for k in listed] == [(key_id, 2, False)]

            other = (await admin.post("/keys", json={"name": "web"})).json()
            assert (
                await client.get("/orders/1", headers={"x-api-key": other["key"]})
            ).status_code == 200
            assert (await admin.delete(f"/keys/{other['id']}")).status_code == 200
            revoked = await client.get("/orders/1", headers={"x-api-key": other["key"]})
            assert revoked.status_code == 403
            assert (await admin.delete(f"/keys/{other['id']}")).status_code == 404


async def test_lambda_authorizer_allows_denies_and_caches(app_dir: Path) -> None:
    calls = app_dir.parent / "calls.jsonl"
    async with run_platform(app_dir) as platform, client_for(platform) as client:
        assert (await client.get("/admin/stats")).status_code == 401  # no identity: not called
        assert jsonl(calls) == []
        allowed = await client.get("/admin/stats", headers={"authorization": "let-me-in"})
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["authorizer"] == {"lambda": {"user": "u-7", "tier": "gold"}}
        again = await client.get("/admin/stats", headers={"authorization": "let-me-in"})
        assert again.status_code == 200
        denied = await client.get("/admin/stats", headers={"authorization": "nope"})
        assert denied.status_code == 403
        assert denied.json() == {"message": "Forbidden"}
        assert (
            await client.get("/admin/stats", headers={"authorization": "nope"})
        ).status_code == 403
        broken = await client.get("/admin/stats", headers={"authorization": "explode"})
        assert broken.status_code == 500
        assert jsonl(calls) == [  # one call per identity within the ttl
            {"type": "REQUEST", "identity": ["let-me-in"]},
            {"type": "REQUEST", "identity": ["nope"]},
            {"type": "REQUEST", "identity": ["explode"]},
        ]


async def test_cors_preflight_and_response_headers(app_dir: Path) -> None:
    async with run_platform(app_dir) as platform, client_for(platform) as client:
        preflight = await client.options(
            "/orders",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert preflight.headers["access-control-allow-methods"] == "GET,POST"
        assert preflight.headers["access-control-max-age"] == "600"
        assert jsonl(app_dir.parent / "calls.jsonl") == []
        plain = await client.get("/public", headers={"origin": "https://app.example"})
        assert plain.headers["access-control-allow-origin"] == "https://app.example"
        stranger = await client.get("/public", headers={"origin": "https://evil.example"})
        assert stranger.status_code == 200
        assert "access-control-allow-origin" not in stranger.headers
        bad = await client.options(
            "/orders",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        assert bad.status_code == 204
        assert "access-control-allow-origin" not in bad.headers


async def test_rate_limited_route_answers_429_with_retry_after(app_dir: Path) -> None:
    async with run_platform(app_dir) as platform, client_for(platform) as client:
        assert [(await client.get("/limited")).status_code for _ in range(2)] == [200, 200]
        limited = await client.get("/limited")
        assert limited.status_code == 429
        assert limited.json() == {"message": "Too Many Requests"}
        assert int(limited.headers["retry-after"]) > 900  # 1 token per 1000 s
        assert (await client.get("/public")).status_code == 200  # other routes are unaffected


async def test_lamina_keys_creates_lists_and_revokes_what_the_gateway_honours(
    app_dir: Path,
) -> None:
    runner = CliRunner()

    def keys(*args: str) -> Any:
        return runner.invoke(cli_app, ["keys", *args, "-C", str(app_dir)])

    async with run_platform(app_dir) as platform, client_for(platform) as client:
        created = await asyncio.to_thread(keys, "create", "cli-app", "--quota", "5", "--json")
        made = json.loads(created.output)
        allowed = await client.get("/orders/1", headers={"x-api-key": made["key"]})
        listed = await asyncio.to_thread(keys, "ls")
        burst_alone = await asyncio.to_thread(keys, "create", "x", "--burst", "3")
        revoked = await asyncio.to_thread(keys, "revoke", made["id"])
        refused = await client.get("/orders/1", headers={"x-api-key": made["key"]})
        after = await asyncio.to_thread(keys, "ls", "--all", "--json")
        again = await asyncio.to_thread(keys, "revoke", made["id"])

    assert created.exit_code == 0 and made["key"].startswith("lk_"), created.output
    assert allowed.status_code == 200
    assert listed.exit_code == 0 and "cli-app" in listed.output and made["id"] in listed.output
    assert made["key"] not in listed.output  # only its hash is kept
    assert burst_alone.exit_code == 2 and "--burst needs --rate" in burst_alone.output
    assert revoked.exit_code == 0 and f"revoked {made['id']}" in revoked.output
    assert refused.status_code == 403
    [row] = json.loads(after.output)
    assert (row["id"], row["revoked"], row["used_today"]) == (made["id"], True, 1)
    assert again.exit_code != 0 and made["id"] in again.output
