"""Lambda compatibility: Powertools and FastAPI/Mangum apps run unchanged behind the gateway,
and handlers see the context and environment the AWS Python runtime gives them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from harness import client_for, run_platform, write_app

from lamina.control import Platform

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(10)]

FUNCTIONS: dict[str, dict[str, Any]] = {
    "pt_http": {
        "handler": "compat_powertools.http_handler",
        "events": [{"http": "ANY /pt/{proxy+}"}],
    },
    "pt_rest": {
        "handler": "compat_powertools.rest_handler",
        "events": [{"http": {"route": "ANY /rest/{proxy+}", "format": "1.0"}}],
    },
    "fastapi": {"handler": "compat_fastapi.handler", "events": [{"http": "ANY /api/{proxy+}"}]},
    "whoami": {
        "handler": "basic.whoami",
        "memory": 256,
        "timeout": 4,
        "env": {"FUNCTION_VAR": "from-function", "SHARED_VAR": "function wins"},
        "events": [{"http": "GET /whoami"}],
    },
    "caller": {"handler": "basic.call_other", "events": [{"http": "POST /call"}]},
    "hello": {"handler": "basic.hello"},
    "fail": {"handler": "invoke_targets.fail"},
}
SERVICE_ENV = {"SERVICE_VAR": "from-service", "SHARED_VAR": "service loses"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    app = write_app(tmp_path_factory.mktemp("compat") / "app", FUNCTIONS, SERVICE_ENV)
    async with run_platform(app) as running:
        yield running


# -- Powertools and FastAPI: the same two routes in each app, under its own prefix -------------
APPS = [
    pytest.param("/pt", id="powertools HTTP API resolver on payload 2.0"),
    pytest.param("/rest", id="powertools REST API resolver on payload 1.0"),
    pytest.param("/api", id="FastAPI behind Mangum on payload 2.0"),
]


@pytest.mark.parametrize("prefix", APPS)
async def test_a_get_route_sees_path_query_header_and_cookie(
    platform: Platform, prefix: str
) -> None:
    async with client_for(platform) as client:
        response = await client.get(
            f"{prefix}/items/42",
            params={"color": "blue green"},
            headers={"x-session": "s-1", "cookie": "theme=dark; flavor=mint"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    item_id = body.pop("item_id")
    assert str(item_id) == "42"
    assert body == {"color": "blue green", "session": "s-1", "cookie": "mint"}


@pytest.mark.parametrize("prefix", APPS)
async def test_a_json_post_gets_a_custom_status_header_and_cookie_back(
    platform: Platform, prefix: str
) -> None:
    item = {"name": "widget", "tags": ["red", "small"]}
    async with client_for(platform) as client:
        response = await client.post(f"{prefix}/items", json=item)
    assert response.status_code == 201, response.text
    assert response.headers["x-item-name"] == "widget"
    assert response.json() == {"created": item, "size": 2}
    cookies = sorted(response.headers.get_list("set-cookie"))  # one header per cookie
    assert len(cookies) == 2
    assert cookies[0].startswith("count=2")
    assert "httponly" in cookies[0].lower()
    assert cookies[1].startswith("last=widget")


@pytest.mark.parametrize("prefix", APPS)
async def test_an_unknown_path_inside_the_app_is_the_apps_own_404(
    platform: Platform, prefix: str
) -> None:
    async with client_for(platform) as client:
        response = await client.get(f"{prefix}/nothing/here")
    assert response.status_code == 404
    assert "x-lamina-error" not in response.headers  # the app answered, not the platform


async def test_fastapi_validation_errors_come_back_as_its_422(platform: Platform) -> None:
    async with client_for(platform) as client:
        response = await client.post("/api/items", json={"name": "widget"})
        bad_id = await client.get("/api/items/forty-two")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "tags"]
    assert bad_id.status_code == 422


# -- context and environment ------------------------------------------------------------------
async def test_the_handler_sees_lambda_environment_variables(platform: Platform) -> None:
    async with client_for(platform) as client:
        response = await client.get("/whoami")
    assert response.status_code == 200, response.text
    env = response.json()["env"]
    code_dir = str(platform.app.functions()["svc.whoami"].path)
    assert env == {
        "AWS_LAMBDA_FUNCTION_NAME": "svc.whoami",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "_HANDLER": "basic.whoami",
        "LAMBDA_TASK_ROOT": code_dir,
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/svc.whoami",
        "AWS_LAMBDA_LOG_STREAM_NAME": env["AWS_LAMBDA_LOG_STREAM_NAME"],
        "SERVICE_VAR": "from-service",
        "FUNCTION_VAR": "from-function",
        "SHARED_VAR": "function wins",
    }
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"]


async def test_the_handler_sees_a_lambda_context(platform: Platform) -> None:
    async with client_for(platform) as client:
        response = await client.get("/whoami")
    context = response.json()["context"]
    assert context["aws_request_id"] == response.headers["x-amzn-requestid"]
    assert uuid.UUID(context["aws_request_id"])
    assert context["function_name"] == "svc.whoami"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"].startswith("arn:aws:lambda:us-east-1:")
    assert context["invoked_function_arn"].endswith(":function:svc.whoami")
    assert context["memory_limit_in_mb"] == "256"  # a string, as on AWS
    assert context["log_group_name"] == "/aws/lambda/svc.whoami"
    assert context["log_stream_name"]
    assert 0 < context["remaining_ms"] <= 4000
    assert context["client_context"] is None
    assert context["identity"] is None


async def test_lamina_invoke_from_function_code_returns_the_other_functions_result(
    platform: Platform,
) -> None:
    async with client_for(platform) as client:
        response = await client.post("/call", json={"target": "svc.hello"})
    assert response.status_code == 200, response.text
    called = response.json()["called"]
    assert set(called) == {"pid", "request_id", "init_pid"}
    assert uuid.UUID(called["request_id"])
    assert called["request_id"] != response.headers["x-amzn-requestid"]


async def test_an_error_in_the_function_lamina_invoke_called_fails_the_caller(
    platform: Platform,
) -> None:
    async with client_for(platform) as client:
        response = await client.post("/call", json={"target": "svc.fail"})
    assert response.status_code == 502
    assert response.headers["x-lamina-error"] == "FunctionError"  # raised by lamina.invoke
