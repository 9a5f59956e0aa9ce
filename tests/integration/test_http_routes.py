from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import client_for, run_platform


@pytest.fixture(autouse=True, params=["uvicorn", "granian"])
def http_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on both of the gateway's HTTP servers (`lamina up --http`)."""
    monkeypatch.setenv("LAMINA_TEST_HTTP", request.param)
    return str(request.param)


async def test_a_route_invokes_its_function_and_returns_the_request_id(
    app_dir: Callable[..., Path], executor: dict[str, Any]
) -> None:
    app = app_dir({"hello": {"handler": "basic.hello", "events": [{"http": "GET /hello"}]}})
    async with run_platform(app, **executor) as platform, client_for(platform) as client:
        response = await client.get("/hello")
    assert response.status_code == 200
    body = response.json()
    assert response.headers["x-amzn-requestid"] == body["request_id"]
    assert response.headers["content-type"] == "application/json"
    # framed by its length, as API Gateway's responses are, not chunked
    assert response.headers["content-length"] == str(len(response.content))
    assert "transfer-encoding" not in response.headers


async def test_bodies_are_framed_by_their_length_and_left_out_where_http_has_none(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir({"status": {"handler": "basic.status", "events": [{"http": "ANY /status"}]}})
    async with run_platform(app) as platform, client_for(platform) as client:
        text = await client.get("/status", params={"body": "abc"})
        empty = await client.get("/status")
        no_content = await client.get("/status", params={"status": "204", "body": "dropped"})
        head = await client.head("/status", params={"body": "abc"})
        empty_head = await client.head("/status")
    assert (text.status_code, text.content, text.headers["content-length"]) == (200, b"abc", "3")
    assert (empty.content, empty.headers["content-length"]) == (b"", "0")
    # 204 has no body, whatever the function returned, and says no length
    assert (no_content.status_code, no_content.content) == (204, b"")
    assert "content-length" not in no_content.headers
    # HEAD: the length of the body the function gave, which is not sent
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "3")
    assert empty_head.status_code == 200
    assert "content-length" not in empty_head.headers, "an empty HEAD answer claims no length"


async def test_the_handler_sees_its_lambda_context_and_environment(
    app_dir: Callable[..., Path], executor: dict[str, Any]
) -> None:
    app = app_dir(
        {
            "whoami": {
                "handler": "basic.whoami",
                "memory": 256,
                "timeout": 4,
                "env": {"FUNCTION_VAR": "from-function"},
                "events": [{"http": "GET /whoami"}],
            }
        },
        env={"SERVICE_VAR": "from-service"},
    )
    async with run_platform(app, **executor) as platform, client_for(platform) as client:
        response = await client.get("/whoami")
    assert response.status_code == 200, response.text
    body = response.json()
    context, env = body["context"], body["env"]
    assert context["aws_request_id"] == response.headers["x-amzn-requestid"]
    assert context["function_name"] == "svc.whoami"
    assert context["invoked_function_arn"].endswith(":function:svc.whoami")
    assert context["memory_limit_in_mb"] == "256"
    assert context["log_group_name"] == "/aws/lambda/svc.whoami"
    assert context["log_stream_name"].startswith("lamina/svc.whoami/")
    assert 0 < context["remaining_ms"] <= 4000
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "svc.whoami"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert (env["SERVICE_VAR"], env["FUNCTION_VAR"]) == ("from-service", "from-function")
    # The code folder the handler runs in: on Ray, the copy its runtime environment unpacked.
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"]
    assert (Path(body["cwd"]) / "basic.py").is_file()


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
    assert missing.headers["content-length"] == str(len(missing.content))
    assert too_big.status_code == 413
    assert too_big.json() == {"message": "Request Entity Too Large"}
