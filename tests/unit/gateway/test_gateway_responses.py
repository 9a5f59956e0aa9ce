"""Function result -> HTTP response, as API Gateway maps Lambda proxy results."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from lamina.gateway.responses import (
    BadFunctionResponse,
    HttpResponse,
    framed,
    http_response_from_result,
    json_error,
)

JSON = (b"content-type", b"application/json")
PLAIN = (b"content-type", b"text/plain; charset=utf-8")


@pytest.mark.parametrize(
    ("result", "status", "headers", "body"),
    [
        pytest.param(
            "Hello from Lambda!",
            200,
            [JSON],
            b"Hello from Lambda!",
            id="2.0 infers a string result as the body itself",
        ),
        pytest.param(
            {"message": "Hello from Lambda!"},
            200,
            [JSON],
            b'{"message":"Hello from Lambda!"}',
            id="2.0 infers an object without statusCode as JSON",
        ),
        pytest.param(
            {"body": "x", "headers": {"a": "b"}},
            200,
            [JSON],
            b'{"body":"x","headers":{"a":"b"}}',
            id="2.0 infers a response-like object without statusCode as JSON too",
        ),
        pytest.param([1, 2], 200, [JSON], b"[1,2]", id="2.0 infers a list as JSON"),
        pytest.param(None, 200, [JSON], b"null", id="2.0 infers None as JSON null"),
        pytest.param(42, 200, [JSON], b"42", id="2.0 infers a number as JSON"),
        pytest.param(
            2**70, 200, [JSON], b"1180591620717411303424", id="2.0 infers a huge integer as JSON"
        ),
        pytest.param(
            {"statusCode": 201, "body": "made"},
            201,
            [PLAIN],
            b"made",
            id="2.0 structured without content type is text/plain",
        ),
        pytest.param({"statusCode": 204}, 204, [], b"", id="2.0 structured without body is empty"),
        pytest.param(
            {"statusCode": "404", "body": ""},
            404,
            [],
            b"",
            id="a statusCode string of digits is accepted",
        ),
        pytest.param(
            {
                "statusCode": 200,
                "headers": {"Content-Type": "text/html", "X-N": 5, "X-B": True},
                "body": "<p>",
            },
            200,
            [(b"content-type", b"text/html"), (b"x-n", b"5"), (b"x-b", b"true")],
            b"<p>",
            id="header names are lower-cased and scalar values stringified",
        ),
        pytest.param(
            {
                "statusCode": 200,
                "cookies": ["a=1; Path=/", "b=2"],
                "headers": {"content-type": "text/plain"},
                "body": "ok",
            },
            200,
            [
                (b"content-type", b"text/plain"),
                (b"set-cookie", b"a=1; Path=/"),
                (b"set-cookie", b"b=2"),
            ],
            b"ok",
            id="2.0 cookies become one set-cookie header each",
        ),
        pytest.param(
            {
                "statusCode": 200,
                "multiValueHeaders": {"x-a": ["1", "2"]},
                "headers": {"content-type": "a/b"},
                "body": "x",
            },
            200,
            [(b"content-type", b"a/b")],
            b"x",
            id="2.0 ignores multiValueHeaders as AWS does",
        ),
        pytest.param(
            {
                "statusCode": 200,
                "isBase64Encoded": True,
                "body": base64.b64encode(b"\x89PNG").decode(),
                "headers": {"content-type": "image/png"},
            },
            200,
            [(b"content-type", b"image/png")],
            b"\x89PNG",
            id="a base64 body is decoded",
        ),
        pytest.param(
            {
                "statusCode": 200,
                "isBase64Encoded": False,
                "body": "aGk=",
                "headers": {"content-type": "t/p"},
            },
            200,
            [(b"content-type", b"t/p")],
            b"aGk=",
            id="a body not flagged base64 is sent as is",
        ),
        pytest.param(
            {
                "statusCode": 200,
                "headers": {"content-length": "999", "Connection": "close", "x": "y"},
                "body": "{}",
            },
            200,
            [(b"x", b"y"), PLAIN],
            b"{}",
            id="framing headers from the function are dropped",
        ),
        pytest.param(
            {"statusCode": 200, "headers": {"x-null": None}, "body": "\u00e9"},
            200,
            [PLAIN],
            "\u00e9".encode(),
            id="null header values are skipped and the body is UTF-8",
        ),
    ],
)
def test_v2_mapping(
    result: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    assert http_response_from_result(result, "2.0") == HttpResponse(status, headers, body)


@pytest.mark.parametrize(
    ("result", "status", "headers", "body"),
    [
        pytest.param(
            {"statusCode": 200, "body": "results"},
            200,
            [JSON],
            b"results",
            id="1.0 structured without content type defaults to JSON",
        ),
        pytest.param(
            {
                "statusCode": 200,
                "headers": {"X-One": "1", "X-Both": "h"},
                "multiValueHeaders": {"x-both": ["m1", "m2"], "X-Multi": ["a"]},
                "body": "",
            },
            200,
            [(b"x-one", b"1"), (b"x-both", b"m1"), (b"x-both", b"m2"), (b"x-multi", b"a")],
            b"",
            id="1.0 merges headers and multiValueHeaders with multiValueHeaders winning a name",
        ),
        pytest.param(
            {"statusCode": 200, "cookies": ["a=1"], "body": ""},
            200,
            [],
            b"",
            id="1.0 ignores cookies",
        ),
        pytest.param(
            {"statusCode": 302, "headers": {"location": "/x"}},
            302,
            [(b"location", b"/x")],
            b"",
            id="1.0 redirect without body",
        ),
        pytest.param(
            {
                "statusCode": 200,
                "isBase64Encoded": "true",
                "body": "aGk=\n",
                "headers": {"content-type": "t/p"},
            },
            200,
            [(b"content-type", b"t/p")],
            b"hi",
            id="isBase64Encoded may be the string true",
        ),
    ],
)
def test_v1_mapping(
    result: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    assert http_response_from_result(result, "1.0") == HttpResponse(status, headers, body)


@pytest.mark.parametrize(
    ("result", "fmt", "reason"),
    [
        pytest.param("hello", "1.0", "needs an object", id="1.0 does not infer a string result"),
        pytest.param({"body": "x"}, "1.0", "needs statusCode", id="1.0 needs statusCode"),
        pytest.param({"statusCode": 99}, "2.0", "200-599", id="a status below 100 is invalid"),
        pytest.param(
            {"statusCode": 101}, "2.0", "200-599", id="a 1xx status is not a final answer"
        ),
        pytest.param({"statusCode": 600}, "1.0", "200-599", id="a status above 599 is invalid"),
        pytest.param({"statusCode": True}, "2.0", "200-599", id="a boolean status is invalid"),
        pytest.param({"statusCode": 200.5}, "2.0", "200-599", id="a fractional status is invalid"),
        pytest.param({"statusCode": "ok"}, "2.0", "200-599", id="a non-numeric status is invalid"),
        pytest.param({"statusCode": None}, "2.0", "200-599", id="a null status is invalid"),
        pytest.param(
            {"statusCode": 200, "body": {"a": 1}},
            "2.0",
            "body must be a string",
            id="an object body is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "headers": ["a"]},
            "2.0",
            "headers must be an object",
            id="headers as a list is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "headers": {"x": {"y": 1}}},
            "2.0",
            "must be a string",
            id="an object header value is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "headers": {"x": "\u2603"}},
            "2.0",
            "latin-1",
            id="a header value outside latin-1 is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "headers": {"x": "a\r\nSet-Cookie: evil"}},
            "2.0",
            "line break",
            id="a header value with CRLF is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "headers": {"bad name": "v"}},
            "2.0",
            "header name",
            id="a header name with a space is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "headers": {"x(y)": "v"}},
            "2.0",
            "header name",
            id="a header name that is not an HTTP token is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "headers": {"x": "a\x00b"}},
            "2.0",
            "control character",
            id="a header value with a control character is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "multiValueHeaders": {"x": "v"}},
            "1.0",
            "must be a list",
            id="a multiValueHeaders value that is not a list is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "multiValueHeaders": []},
            "1.0",
            "must be an object",
            id="multiValueHeaders as a list is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "cookies": "a=1"},
            "2.0",
            "cookies must be a list",
            id="cookies as a string is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "cookies": [1]},
            "2.0",
            "cookie must be a string",
            id="a non-string cookie is invalid",
        ),
        pytest.param(
            {"statusCode": 200, "isBase64Encoded": True, "body": "***"},
            "2.0",
            "not base64",
            id="a body flagged base64 that is not base64 is invalid",
        ),
    ],
)
def test_unmappable_results_raise(result: Any, fmt: Any, reason: str) -> None:
    with pytest.raises(BadFunctionResponse, match=reason):
        http_response_from_result(result, fmt)


def test_bad_function_response_is_a_value_error() -> None:
    assert issubclass(BadFunctionResponse, ValueError)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        pytest.param(404, "Not Found", id="no route"),
        pytest.param(413, "Request Entity Too Large", id="body too large"),
        pytest.param(429, "Too Many Requests", id="throttled"),
        pytest.param(502, "Internal Server Error", id="bad function response"),
        pytest.param(504, "Endpoint request timed out", id="function timeout"),
    ],
)
def test_json_error_has_api_gateway_shape(status: int, message: str) -> None:
    response = json_error(status, message)
    assert response.status == status
    assert response.headers == [(b"content-type", b"application/json")]
    assert orjson.loads(response.body) == {"message": message}


def test_a_header_value_may_hold_a_tab() -> None:
    response = http_response_from_result({"statusCode": 200, "headers": {"x": "a\tb"}}, "2.0")
    assert response.headers == [(b"x", b"a\tb")]


@pytest.mark.parametrize(
    ("status", "body", "head", "length", "sent"),
    [
        pytest.param(200, b"abc", False, b"3", b"abc", id="a body is framed by its length"),
        pytest.param(200, b"", False, b"0", b"", id="an empty body says so"),
        pytest.param(200, b"abc", True, b"3", b"", id="HEAD names the length, sends no body"),
        pytest.param(200, b"", True, None, b"", id="HEAD of an empty body names none"),
        pytest.param(204, b"abc", False, None, b"", id="204 has no body, whatever was given"),
        pytest.param(304, b"abc", False, None, b"", id="304 has no body"),
        pytest.param(103, b"abc", False, None, b"", id="1xx has no body"),
    ],
)
def test_framed(status: int, body: bytes, head: bool, length: bytes | None, sent: bytes) -> None:
    response = HttpResponse(status, [(b"x", b"1")], body)
    headers, out = framed(response, head=head)
    assert out == sent
    lengths = [value for name, value in headers if name == b"content-length"]
    assert lengths == ([length] if length is not None else [])
    assert headers[0] == (b"x", b"1")
    assert response.headers == [(b"x", b"1")]  # the response itself is left as it was
