from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness import client_for, run_platform


async def test_a_route_invokes_its_function_and_returns_the_request_id(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir({"hello": {"handler": "basic.hello", "events": [{"http": "GET /hello"}]}})
    async with run_platform(app) as platform, client_for(platform) as client:
        response = await client.get("/hello")
    assert response.status_code == 200
    body = response.json()
    assert response.headers["x-amzn-requestid"] == body["request_id"]
    assert response.headers["content-type"] == "application/json"


async def test_unknown_route_is_404_json_and_oversized_body_is_413(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir({"hello": {"handler": "basic.hello", "events": [{"http": "POST /hello"}]}})
    async with run_platform(app) as platform, client_for(platform) as client:
        missing = await client.get("/nowhere")
        too_big = await client.post("/hello", content=b"x" * (6 * 1024 * 1024 + 1))
    assert missing.status_code == 404
    assert missing.json() == {"message": "Not Found"}
    assert missing.headers["x-amzn-requestid"]
    assert too_big.status_code == 413
    assert too_big.json() == {"message": "Request Entity Too Large"}
