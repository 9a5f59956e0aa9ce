"""The repository's examples/hello app serves what its handlers define."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from harness import client_for

from lamina.control import Platform, PlatformOptions
from lamina.manifest import load_app

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(10)]

EXAMPLE = Path(__file__).parents[2] / "examples" / "hello"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    # A copy, so that the platform's .lamina/ state never lands in the repository.
    app = shutil.copytree(EXAMPLE, tmp_path_factory.mktemp("example") / "hello")
    options = PlatformOptions(port=0, state_dir=app / ".lamina", grace_s=5.0)
    async with Platform(load_app(app), options) as running:
        yield running


async def test_get_hello_greets_the_world_or_the_name_in_the_query(platform: Platform) -> None:
    async with client_for(platform) as client:
        plain = await client.get("/hello")
        named = await client.get("/hello", params={"name": "you"})
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/json"
    assert plain.json()["message"] == "Hello, world!"
    assert plain.json()["request_id"] == plain.headers["x-amzn-requestid"]
    assert plain.json()["instance_age_s"] >= 0
    assert named.json()["message"] == "Hello, you!"


async def test_get_hello_name_greets_the_path_parameter(platform: Platform) -> None:
    async with client_for(platform) as client:
        response = await client.get("/hello/Ada%20Lovelace")
    assert response.status_code == 200
    assert response.json()["message"] == "Hello, Ada Lovelace!"


async def test_the_rest_echo_route_returns_the_payload_1_0_event_it_received(
    platform: Platform,
) -> None:
    async with client_for(platform) as client:
        response = await client.post(
            "/echo/a/b",
            params=[("x", "1"), ("x", "2"), ("y", "z")],
            content=b'{"hello": "echo"}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "method": "POST",
        "path": "/echo/a/b",
        "proxy": "a/b",
        "query": {"x": ["1", "2"], "y": ["z"]},
        "body": '{"hello": "echo"}',
        "memory_mb": "256",
    }


async def test_the_async_slow_route_sleeps_as_asked_whatever_the_body_encoding(
    platform: Platform,
) -> None:
    async with client_for(platform) as client:
        as_json = await client.post("/slow", json={"seconds": 0.2})
        untyped = await client.post("/slow", content=b'{"seconds": 0.1}')  # base64 in the event
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["slept"] == 0.2
    assert 0 < as_json.json()["remaining_ms"] <= 5000
    assert untyped.status_code == 200, untyped.text
    assert untyped.json()["slept"] == 0.1


async def test_one_slow_instance_serves_concurrent_requests(platform: Platform) -> None:
    async with client_for(platform) as client:
        responses = await asyncio.gather(
            *(client.post("/slow", json={"seconds": 0.3}) for _ in range(4))
        )
    assert [r.status_code for r in responses] == [200] * 4
    request_ids = {r.headers["x-amzn-requestid"] for r in responses}
    assert len(request_ids) == 4
    assert all(uuid.UUID(rid) for rid in request_ids)
    assert platform.invoker is not None
    slow = next(f for f in platform.invoker.status() if f["id"] == "greeter.slow")
    assert slow["instances"] == 1  # concurrency 8: no second instance was needed
