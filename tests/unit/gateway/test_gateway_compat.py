"""Our events and response mapping against the real Lambda web libraries, in process.

Each test builds an HttpRequest, turns it into an event with our mapper, hands it to an app
built with aws-lambda-powertools or Mangum + FastAPI exactly as a Lambda handler would, and maps
the returned dict back through http_response_from_result. If these pass, code written for
API Gateway runs unchanged on Lamina.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
)
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from mangum import Mangum

from lamina.gateway.events import http_api_v2_event, rest_v1_event
from lamina.gateway.request import HttpRequest
from lamina.gateway.responses import HttpResponse, http_response_from_result
from lamina.gateway.routes import Router
from lamina.manifest.routekey import RouteKey

EventBuilder = Callable[..., dict[str, Any]]
FORMATS = [
    pytest.param("2.0", http_api_v2_event, id="payload format 2.0"),
    pytest.param("1.0", rest_v1_event, id="payload format 1.0"),
]


@dataclass
class FakeContext:
    """The attributes of the Lambda context object these libraries read."""

    function_name: str = "users-get"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:users-get"
    memory_limit_in_mb: int = 128
    aws_request_id: str = "req-1"
    log_group_name: str = "/aws/lambda/users-get"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 3000


def run_through(
    fmt: str,
    build: EventBuilder,
    handler: Callable[[dict[str, Any], Any], Any],
    route_keys: list[str],
    req: HttpRequest,
) -> tuple[dict[str, Any], HttpResponse]:
    """Route `req`, build the event, call `handler`, map its JSON round-tripped result."""
    match = Router((RouteKey.parse(k), k) for k in route_keys).match(req.method, req.path)
    assert match is not None
    event = build(req, match, request_id="req-1", time_epoch_ms=1_700_000_000_000)
    event = orjson.loads(orjson.dumps(event))  # the event crosses a process boundary as JSON
    result = orjson.loads(orjson.dumps(handler(event, FakeContext())))
    return event, http_response_from_result(result, fmt)  # type: ignore[arg-type]


def header(response: HttpResponse, name: bytes) -> list[bytes]:
    return [v for k, v in response.headers if k == name]


def powertools_app(resolver: APIGatewayHttpResolver | APIGatewayRestResolver) -> Any:
    app = resolver

    @app.get("/users/<user_id>")
    def get_user(user_id: str) -> dict[str, Any]:
        event = app.current_event
        return {
            "id": user_id,
            "verbose": event.get_query_string_value("verbose"),
            "tag": event.get_query_string_value("tag"),
            "tags": event.get_multi_value_query_string_values("tag"),
            "agent": event.headers.get("user-agent"),
        }

    @app.post("/users")
    def create_user() -> Response[str]:
        body = app.current_event.json_body
        return Response(
            status_code=201,
            content_type="application/json",
            body=orjson.dumps({"created": body["name"]}).decode(),
            headers={"X-Request": ["a", "b"]},
            cookies=[],
        )

    @app.get("/files/<path>")
    def get_file(path: str) -> Response[bytes]:
        return Response(status_code=200, content_type="image/png", body=b"\x89PNG\x00")

    return app


@pytest.fixture
def own_event_loop() -> Iterator[None]:
    """Mangum drives the ASGI app on the current event loop; give it one and close it after."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def fastapi_handler() -> Mangum:
    api = FastAPI()

    @api.get("/items/{item_id}")
    def read_item(item_id: str, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q}

    @api.post("/items")
    async def create_item(request: Request) -> JSONResponse:
        data = await request.json()
        response = JSONResponse({"name": data["name"], "cookie": request.cookies.get("s")}, 201)
        response.set_cookie("seen", "1")
        return response

    @api.put("/blobs/{name}")
    async def put_blob(name: str, request: Request) -> dict[str, Any]:
        raw = await request.body()
        return {"name": name, "size": len(raw), "first": raw[0]}

    return Mangum(api, lifespan="off")


@pytest.mark.parametrize(("fmt", "build"), FORMATS)
def test_powertools_get_with_path_and_query_parameters(
    fmt: str, build: EventBuilder, make_request: Any
) -> None:
    resolver = APIGatewayHttpResolver() if fmt == "2.0" else APIGatewayRestResolver()
    app = powertools_app(resolver)
    req = make_request(
        "GET",
        "/users/42",
        query="verbose=yes&tag=a&tag=b",
        headers=[("host", "localhost"), ("user-agent", "curl/8")],
    )
    _, response = run_through(fmt, build, app.resolve, ["GET /users/{id}"], req)
    assert response.status == 200
    assert header(response, b"content-type") == [b"application/json"]
    body = orjson.loads(response.body)
    assert body["id"] == "42"
    assert body["verbose"] == "yes"
    assert body["agent"] == "curl/8"
    # 2.0 has no multi-value parameters: repeats arrive comma-joined, as on AWS
    assert body["tag"] == ("a,b" if fmt == "2.0" else "b")
    assert body["tags"] == ([] if fmt == "2.0" else ["a", "b"])


@pytest.mark.parametrize(("fmt", "build"), FORMATS)
def test_powertools_post_json_body_with_multi_value_header(
    fmt: str, build: EventBuilder, make_request: Any
) -> None:
    resolver = APIGatewayHttpResolver() if fmt == "2.0" else APIGatewayRestResolver()
    app = powertools_app(resolver)
    req = make_request(
        "POST",
        "/users",
        headers=[("host", "localhost"), ("content-type", "application/json")],
        body=b'{"name": "ann"}',
    )
    _, response = run_through(fmt, build, app.resolve, ["POST /users"], req)
    assert response.status == 201
    assert orjson.loads(response.body) == {"created": "ann"}
    # 2.0 has only single-value headers, Powertools joins repeats; 1.0 keeps them apart
    expected = [b"a, b"] if fmt == "2.0" else [b"a", b"b"]
    assert header(response, b"x-request") == expected


@pytest.mark.parametrize(("fmt", "build"), FORMATS)
def test_powertools_binary_response_is_decoded(
    fmt: str, build: EventBuilder, make_request: Any
) -> None:
    resolver = APIGatewayHttpResolver() if fmt == "2.0" else APIGatewayRestResolver()
    app = powertools_app(resolver)
    req = make_request("GET", "/files/logo.png")
    _, response = run_through(fmt, build, app.resolve, ["GET /files/{name}"], req)
    assert response.status == 200
    assert response.body == b"\x89PNG\x00"
    assert header(response, b"content-type") == [b"image/png"]


@pytest.mark.parametrize(("fmt", "build"), FORMATS)
def test_powertools_unknown_route_gives_its_own_404(
    fmt: str, build: EventBuilder, make_request: Any
) -> None:
    resolver = APIGatewayHttpResolver() if fmt == "2.0" else APIGatewayRestResolver()
    app = powertools_app(resolver)
    _, response = run_through(fmt, build, app.resolve, ["$default"], make_request("GET", "/nope"))
    assert response.status == 404


def test_powertools_v2_cookies_become_set_cookie_headers(make_request: Any) -> None:
    from aws_lambda_powertools.shared.cookies import Cookie

    app = APIGatewayHttpResolver()

    @app.get("/login")
    def login() -> Response[str]:
        cookies = [Cookie(name="s", value="1"), Cookie(name="t", value="2")]
        return Response(200, "text/plain", "ok", cookies=cookies)

    req = make_request("GET", "/login", headers=[("cookie", "old=1; x=2")])
    event, response = run_through("2.0", http_api_v2_event, app.resolve, ["GET /login"], req)
    assert event["cookies"] == ["old=1", "x=2"]
    assert response.status == 200
    assert [c.split(b";")[0] for c in header(response, b"set-cookie")] == [b"s=1", b"t=2"]


@pytest.mark.usefixtures("own_event_loop")
@pytest.mark.parametrize(("fmt", "build"), FORMATS)
def test_mangum_fastapi_get_with_path_and_query_parameters(
    fmt: str, build: EventBuilder, make_request: Any
) -> None:
    handler = fastapi_handler()
    req = make_request("GET", "/items/7", query="q=hello%20world", headers=[("host", "localhost")])
    _, response = run_through(fmt, build, handler, ["GET /items/{id}"], req)
    assert response.status == 200
    assert orjson.loads(response.body) == {"item_id": "7", "q": "hello world"}
    assert header(response, b"content-type") == [b"application/json"]


@pytest.mark.usefixtures("own_event_loop")
@pytest.mark.parametrize(("fmt", "build"), FORMATS)
def test_mangum_fastapi_post_json_with_cookies(
    fmt: str, build: EventBuilder, make_request: Any
) -> None:
    handler = fastapi_handler()
    req = make_request(
        "POST",
        "/items",
        headers=[("host", "localhost"), ("content-type", "application/json"), ("cookie", "s=abc")],
        body=b'{"name": "pen"}',
    )
    _, response = run_through(fmt, build, handler, ["ANY /{proxy+}"], req)
    assert response.status == 201
    assert orjson.loads(response.body) == {"name": "pen", "cookie": "abc"}
    assert [c.split(b";")[0] for c in header(response, b"set-cookie")] == [b"seen=1"]


@pytest.mark.usefixtures("own_event_loop")
@pytest.mark.parametrize(("fmt", "build"), FORMATS)
def test_mangum_fastapi_binary_request_body(
    fmt: str, build: EventBuilder, make_request: Any
) -> None:
    handler = fastapi_handler()
    blob = bytes(range(256))
    req = make_request(
        "PUT", "/blobs/b1", headers=[("content-type", "application/octet-stream")], body=blob
    )
    event, response = run_through(fmt, build, handler, ["$default"], req)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == blob
    assert response.status == 200
    assert orjson.loads(response.body) == {"name": "b1", "size": 256, "first": 0}


@pytest.mark.usefixtures("own_event_loop")
def test_mangum_fastapi_not_found_passes_through(make_request: Any) -> None:
    handler = fastapi_handler()
    _, response = run_through(
        "2.0", http_api_v2_event, handler, ["$default"], make_request("GET", "/missing")
    )
    assert response.status == 404
    assert orjson.loads(response.body) == {"detail": "Not Found"}
