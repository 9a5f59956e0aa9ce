"""HttpRequest -> API Gateway proxy events, payload formats 2.0 and 1.0, field by field."""

from __future__ import annotations

import base64
import dataclasses
import pickle
from typing import Any

import orjson
import pytest

from lamina.gateway.events import (
    ProxyEvent,
    event_from_call,
    format_request_time,
    http_api_v2_event,
    proxy_call,
    rest_v1_event,
)

TIME_MS = 1583348638390  # 2020-03-04T19:03:58.390Z, from the AWS 2.0 example
IDS: dict[str, Any] = {"request_id": "req-1", "time_epoch_ms": TIME_MS}


def test_v2_event_for_a_full_request_has_every_field(make_request: Any, make_match: Any) -> None:
    req = make_request(
        "POST",
        "/my/path",
        query="parameter1=value1&parameter1=value2&parameter2=value",
        headers=[
            ("Host", "id.execute-api.us-east-1.amazonaws.com"),
            ("Header1", "value1"),
            ("Header2", "value1"),
            ("Header2", "value2"),
            ("Cookie", "cookie1=a; cookie2=b"),
            ("User-Agent", "agent"),
            ("Content-Type", "text/plain"),
        ],
        body=b"Hello from Lambda",
    )
    event = http_api_v2_event(req, make_match("POST /my/{thing}", thing="path"), **IDS)
    assert event == {
        "version": "2.0",
        "routeKey": "POST /my/{thing}",
        "rawPath": "/my/path",
        "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
        "cookies": ["cookie1=a", "cookie2=b"],
        "headers": {
            "host": "id.execute-api.us-east-1.amazonaws.com",
            "header1": "value1",
            "header2": "value1,value2",
            "user-agent": "agent",
            "content-type": "text/plain",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "80",
            "x-forwarded-proto": "http",
        },
        "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "lamina",
            "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id",
            "http": {
                "method": "POST",
                "path": "/my/path",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "agent",
            },
            "requestId": "req-1",
            "routeKey": "POST /my/{thing}",
            "stage": "$default",
            "time": "04/Mar/2020:19:03:58 +0000",
            "timeEpoch": TIME_MS,
        },
        "pathParameters": {"thing": "path"},
        "body": "Hello from Lambda",
        "isBase64Encoded": False,
    }


def test_v2_event_for_a_bare_get_leaves_out_empty_fields(
    make_request: Any, make_match: Any
) -> None:
    event = http_api_v2_event(make_request("GET", "/"), make_match("$default"), **IDS)
    assert event["routeKey"] == "$default"
    assert event["requestContext"]["routeKey"] == "$default"
    assert event["rawQueryString"] == ""
    for absent in ("cookies", "queryStringParameters", "pathParameters", "body", "stageVariables"):
        assert absent not in event
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["userAgent"] == ""


def test_v1_event_for_a_full_request_has_every_field(make_request: Any, make_match: Any) -> None:
    req = make_request(
        "GET",
        "/my/path",
        query="parameter1=value1&parameter1=value2&parameter2=value",
        headers=[
            ("Host", "id.execute-api.us-east-1.amazonaws.com"),
            ("Header1", "value1"),
            ("Header2", "value1"),
            ("Header2", "value2"),
            ("User-Agent", "user-agent"),
        ],
    )
    event = rest_v1_event(req, make_match("GET /my/{proxy+}", proxy="path"), **IDS)
    assert event == {
        "version": "1.0",
        "resource": "/my/{proxy+}",
        "path": "/my/path",
        "httpMethod": "GET",
        "headers": {
            "host": "id.execute-api.us-east-1.amazonaws.com",
            "header1": "value1",
            "header2": "value2",
            "user-agent": "user-agent",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "80",
            "x-forwarded-proto": "http",
        },
        "multiValueHeaders": {
            "host": ["id.execute-api.us-east-1.amazonaws.com"],
            "header1": ["value1"],
            "header2": ["value1", "value2"],
            "user-agent": ["user-agent"],
            "x-forwarded-for": ["203.0.113.7"],
            "x-forwarded-port": ["80"],
            "x-forwarded-proto": ["http"],
        },
        "queryStringParameters": {"parameter1": "value2", "parameter2": "value"},
        "multiValueQueryStringParameters": {
            "parameter1": ["value1", "value2"],
            "parameter2": ["value"],
        },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "lamina",
            "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id",
            "extendedRequestId": "req-1",
            "httpMethod": "GET",
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": "203.0.113.7",
                "user": None,
                "userAgent": "user-agent",
                "userArn": None,
            },
            "path": "/my/path",
            "protocol": "HTTP/1.1",
            "requestId": "req-1",
            "requestTime": "04/Mar/2020:19:03:58 +0000",
            "requestTimeEpoch": TIME_MS,
            "resourceId": None,
            "resourcePath": "/my/{proxy+}",
            "stage": "$default",
        },
        "pathParameters": {"proxy": "path"},
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
    }


def test_v1_event_for_a_bare_get_uses_nulls(make_request: Any, make_match: Any) -> None:
    event = rest_v1_event(make_request("GET", "/x"), make_match("$default"), **IDS)
    assert event["resource"] == "$default"
    assert event["requestContext"]["resourcePath"] == "$default"
    for null in (
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ):
        assert event[null] is None
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("query", "v2", "v1_single", "v1_multi"),
    [
        pytest.param(
            "a=1&a=2&b=3",
            {"a": "1,2", "b": "3"},
            {"a": "2", "b": "3"},
            {"a": ["1", "2"], "b": ["3"]},
            id="repeats are comma-joined in 2.0 and listed in 1.0",
        ),
        pytest.param(
            "a=&b",
            {"a": "", "b": ""},
            {"a": "", "b": ""},
            {"a": [""], "b": [""]},
            id="blank values are kept",
        ),
        pytest.param(
            "q=caf%C3%A9+au+lait&x=%26%3D",
            {"q": "caf\u00e9 au lait", "x": "&="},
            {"q": "caf\u00e9 au lait", "x": "&="},
            {"q": ["caf\u00e9 au lait"], "x": ["&="]},
            id="values are percent-decoded",
        ),
        pytest.param("", None, None, None, id="no query string gives no parameters"),
    ],
)
def test_query_parameters(
    make_request: Any,
    make_match: Any,
    query: str,
    v2: dict[str, str] | None,
    v1_single: dict[str, str] | None,
    v1_multi: dict[str, list[str]] | None,
) -> None:
    req = make_request("GET", "/q", query=query)
    event2 = http_api_v2_event(req, make_match("GET /q"), **IDS)
    event1 = rest_v1_event(req, make_match("GET /q"), **IDS)
    assert event2["rawQueryString"] == query
    assert event2.get("queryStringParameters") == v2
    assert event1["queryStringParameters"] == v1_single
    assert event1["multiValueQueryStringParameters"] == v1_multi


@pytest.mark.parametrize(
    ("cookie_headers", "cookies"),
    [
        pytest.param(["a=1"], ["a=1"], id="one cookie"),
        pytest.param(
            ["a=1; b=2; c=3"], ["a=1", "b=2", "c=3"], id="a cookie header is split per cookie"
        ),
        pytest.param(["a=1", "b=2"], ["a=1", "b=2"], id="several cookie headers are combined"),
        pytest.param(["a=1;b=2; "], ["a=1", "b=2"], id="loose separators are tolerated"),
    ],
)
def test_v2_cookies_move_out_of_headers(
    make_request: Any, make_match: Any, cookie_headers: list[str], cookies: list[str]
) -> None:
    req = make_request("GET", "/", headers=[("cookie", c) for c in cookie_headers])
    event = http_api_v2_event(req, make_match("GET /"), **IDS)
    assert event["cookies"] == cookies
    assert "cookie" not in event["headers"]


def test_v1_keeps_the_cookie_header(make_request: Any, make_match: Any) -> None:
    req = make_request("GET", "/", headers=[("cookie", "a=1; b=2")])
    event = rest_v1_event(req, make_match("GET /"), **IDS)
    assert event["headers"]["cookie"] == "a=1; b=2"
    assert event["multiValueHeaders"]["cookie"] == ["a=1; b=2"]


@pytest.mark.parametrize(
    ("content_type", "body", "as_text"),
    [
        pytest.param("application/json", b'{"a": 1}', True, id="JSON is text"),
        pytest.param(
            "application/json; charset=utf-8",
            "\u00e9".encode(),
            True,
            id="JSON with a charset parameter is text",
        ),
        pytest.param("text/html", b"<p>hi</p>", True, id="text types are text"),
        pytest.param("application/xml", b"<a/>", True, id="XML is text"),
        pytest.param("application/vnd.api+json", b"{}", True, id="a +json suffix is text"),
        pytest.param("application/javascript", b"1;", True, id="JavaScript is text"),
        pytest.param("image/png", b"\x89PNG\r\n", False, id="images are base64"),
        pytest.param("application/octet-stream", b"abc", False, id="octet streams are base64"),
        pytest.param(
            "application/x-www-form-urlencoded",
            b"a=1",
            False,
            id="form posts are base64 as on HTTP APIs",
        ),
        pytest.param(None, b"abc", False, id="a body without a content type is base64"),
        pytest.param("text/plain", b"\xff\xfe", False, id="text that is not UTF-8 is base64"),
    ],
)
def test_body_encoding(
    make_request: Any, make_match: Any, content_type: str | None, body: bytes, as_text: bool
) -> None:
    headers = [("content-type", content_type)] if content_type else [("host", "h")]
    req = make_request("POST", "/b", headers=headers, body=body)
    for event in (
        http_api_v2_event(req, make_match("POST /b"), **IDS),
        rest_v1_event(req, make_match("POST /b"), **IDS),
    ):
        assert event["isBase64Encoded"] is (not as_text)
        if as_text:
            assert event["body"] == body.decode()
        else:
            assert base64.b64decode(event["body"]) == body


@pytest.mark.parametrize(
    ("headers", "scheme", "expected"),
    [
        pytest.param(
            [("host", "localhost:8080")],
            "http",
            {
                "x-forwarded-for": "203.0.113.7",
                "x-forwarded-port": "8080",
                "x-forwarded-proto": "http",
            },
            id="the port comes from the host header",
        ),
        pytest.param(
            [("host", "api.test")],
            "https",
            {
                "x-forwarded-for": "203.0.113.7",
                "x-forwarded-port": "443",
                "x-forwarded-proto": "https",
            },
            id="without a port in host the scheme's default port is used",
        ),
        pytest.param(
            [
                ("host", "[::1]"),
                ("x-forwarded-for", "198.51.100.1"),
                ("x-forwarded-proto", "gopher"),
                ("x-forwarded-port", "1"),
            ],
            "http",
            {
                "x-forwarded-for": "198.51.100.1, 203.0.113.7",
                "x-forwarded-port": "80",
                "x-forwarded-proto": "http",
            },
            id="the client address is appended and client proto and port are replaced",
        ),
    ],
)
def test_forwarded_headers_are_added_as_api_gateway_does(
    make_request: Any,
    make_match: Any,
    headers: list[tuple[str, str]],
    scheme: str,
    expected: dict[str, str],
) -> None:
    req = dataclasses.replace(make_request("GET", "/", headers=headers), scheme=scheme)
    event2 = http_api_v2_event(req, make_match("GET /"), **IDS)
    event1 = rest_v1_event(req, make_match("GET /"), **IDS)
    for name, value in expected.items():
        assert event2["headers"][name] == value
        assert event1["headers"][name] == value
        assert event1["multiValueHeaders"][name] == [value]


def test_domain_name_falls_back_from_argument_to_host_to_localhost(
    make_request: Any, make_match: Any
) -> None:
    with_host = make_request("GET", "/", headers=[("host", "localhost:8080")])
    no_host = make_request("GET", "/", headers=[("accept", "*/*")])
    match = make_match("GET /")
    event = http_api_v2_event(with_host, match, **IDS)
    assert event["requestContext"]["domainName"] == "localhost:8080"
    assert event["requestContext"]["domainPrefix"] == "localhost:8080"
    event = http_api_v2_event(with_host, match, domain_name="api.shop.test", **IDS)
    assert event["requestContext"]["domainName"] == "api.shop.test"
    assert event["requestContext"]["domainPrefix"] == "api"
    assert rest_v1_event(no_host, match, **IDS)["requestContext"]["domainName"] == "localhost"


def test_ids_and_a_named_stage(make_request: Any, make_match: Any) -> None:
    req = make_request("GET", "/users/7")
    match = make_match("GET /users/{id}", id="7")
    opts: dict[str, Any] = {"api_id": "abc123", "account_id": "123456789012", "stage": "prod"}
    event2 = http_api_v2_event(req, match, **IDS, **opts)
    assert event2["rawPath"] == "/prod/users/7"
    assert event2["requestContext"]["http"]["path"] == "/prod/users/7"
    assert event2["requestContext"]["stage"] == "prod"
    assert event2["requestContext"]["apiId"] == "abc123"
    assert event2["requestContext"]["accountId"] == "123456789012"
    event1 = rest_v1_event(req, match, **IDS, **opts)
    assert event1["path"] == "/users/7"
    assert event1["requestContext"]["path"] == "/prod/users/7"
    assert event1["requestContext"]["stage"] == "prod"


def test_the_decoded_path_is_what_the_function_sees(make_request: Any, make_match: Any) -> None:
    req = make_request("GET", "/files/a b", raw_path="/files/a%20b")
    match = make_match("GET /files/{name}", name="a b")
    assert http_api_v2_event(req, match, **IDS)["rawPath"] == "/files/a b"
    assert rest_v1_event(req, match, **IDS)["path"] == "/files/a b"


@pytest.mark.parametrize(
    ("epoch_ms", "text"),
    [
        pytest.param(0, "01/Jan/1970:00:00:00 +0000", id="the epoch"),
        pytest.param(1583348638390, "04/Mar/2020:19:03:58 +0000", id="milliseconds are truncated"),
        pytest.param(
            1702252799999, "10/Dec/2023:23:59:59 +0000", id="the last millisecond of a day"
        ),
    ],
)
def test_request_time_format(epoch_ms: int, text: str) -> None:
    assert format_request_time(epoch_ms) == text


_REQUESTS: list[dict[str, Any]] = [
    {"method": "GET", "path": "/"},
    {
        "method": "POST",
        "path": "/orders/7",
        "query": "a=1&a=2&b=",
        "headers": [
            ("host", "api.example.com:8443"),
            ("cookie", "s=1; t=2"),
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-proto", "https"),
            ("accept", "text/html"),
            ("accept", "application/json"),
            ("user-agent", "curl/8"),
            ("content-type", "application/json"),
        ],
        "body": b'{"n": 1}',
    },
    {"method": "PUT", "path": "/blob", "body": b"\x00\xff\x10"},  # base64
]


@pytest.mark.parametrize("payload_format", ["2.0", "1.0"])
@pytest.mark.parametrize("request_fields", _REQUESTS)
def test_the_instance_builds_the_same_event_from_the_compact_form_the_gateway_sends(
    make_request: Any, make_match: Any, payload_format: str, request_fields: dict[str, Any]
) -> None:
    """An unguarded route's invocation carries `proxy_call`'s list through JSON to the
    instance, which builds the event there: it is the event the gateway would have built."""
    fields = dict(request_fields)
    req = make_request(fields.pop("method"), fields.pop("path"), **fields)
    match = make_match("ANY /orders/{id}", id="7") if req.path != "/" else make_match("$default")
    built = http_api_v2_event if payload_format == "2.0" else rest_v1_event
    expected = built(req, match, **IDS, stage="prod", domain_name="api.lamina.test")
    call = proxy_call(
        req,
        match,
        payload_format=payload_format,
        **IDS,
        stage="prod",
        domain_name="api.lamina.test",
    )
    assert event_from_call(orjson.loads(orjson.dumps(call))) == expected
    assert orjson.dumps(event_from_call(call)) == orjson.dumps(expected)  # same keys, same order
    sent = ProxyEvent(call)
    assert pickle.loads(pickle.dumps(sent)).event() == expected  # to a Ray actor
