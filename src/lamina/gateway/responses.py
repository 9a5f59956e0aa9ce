"""Function result -> HTTP response, as API Gateway maps Lambda proxy results. Pure.

Rules, from AWS "Working with AWS Lambda proxy integrations for HTTP APIs" (response format)
and the REST "Lambda proxy integration output format":
- 2.0: a result that is not an object with `statusCode` is inferred: 200,
  `content-type: application/json`, body = the result (a string as is, anything else as
  JSON). With `statusCode`: `headers`, `cookies` (each one a `set-cookie` header), `body`,
  `isBase64Encoded`. 2.0 has no `multiValueHeaders`; a 2.0 result that sends one gets it
  ignored, as on AWS. Without a content type a non-empty body goes out as
  `text/plain; charset=utf-8`, as HTTP APIs do.
- 1.0: the result must be an object with `statusCode`, else API Gateway answers 502.
  `headers` and `multiValueHeaders` are merged; a name in both takes only the
  `multiValueHeaders` values. Without a content type a non-empty body goes out as
  `application/json`, as REST proxy integrations do.
- Both: `statusCode` is an integer 200-599 (a string of digits is accepted; a 1xx is not a
  final answer); `body` is a string or absent; header names and values are strings, numbers
  or booleans, latin-1 encodable; names are RFC 9110 tokens, values free of control
  characters but tab.
  `content-length`, `transfer-encoding` and `connection` from the function are dropped: the
  server frames the body itself.
Anything else raises BadFunctionResponse, which the gateway turns into a 502.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

__all__ = [
    "BadFunctionResponse",
    "HttpResponse",
    "framed",
    "http_response_from_result",
    "json_error",
]

_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_JSON = b"application/json"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field name
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # not allowed in a field value (tab is)


@dataclass(slots=True)
class HttpResponse:
    """A complete HTTP response; header names are lower-case bytes, in order, repeats kept."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class BadFunctionResponse(ValueError):
    """Raised when a function result cannot be mapped to an HTTP response; says why."""


def framed(
    response: HttpResponse, *, head: bool = False
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body to send for `response`, framed by a `content-length` as API
    Gateway's are. A 1xx, 204 or 304 response has no body, whatever the function returned; an
    answer to HEAD (`head`) names the length of the body it does not send, when there is one."""
    body = response.body
    if response.status < 200 or response.status in (204, 304) or (head and not body):
        return response.headers, b""
    return [*response.headers, (b"content-length", b"%d" % len(body))], b"" if head else body


def json_error(status: int, message: str) -> HttpResponse:
    """API Gateway's own error shape: `{"message": ...}` as application/json."""
    return HttpResponse(status, [(b"content-type", _JSON)], orjson.dumps({"message": message}))


def http_response_from_result(result: Any, payload_format: Literal["2.0", "1.0"]) -> HttpResponse:
    """Map the handler's JSON-decoded return value to an HTTP response.

    Raises BadFunctionResponse when the result does not follow the proxy response format.
    """
    if payload_format == "2.0":
        # dict first: a JSON-decoded result is one, and the Mapping ABC's check costs more
        if not (isinstance(result, (dict, Mapping)) and "statusCode" in result):
            body = result.encode("utf-8") if isinstance(result, str) else _dumps(result)
            return HttpResponse(200, [(b"content-type", _JSON)], body)
        return _structured(result, v2=True)
    if payload_format == "1.0":
        if not isinstance(result, Mapping):
            raise BadFunctionResponse(
                f"payload format 1.0 needs an object with statusCode, got {type(result).__name__}"
            )
        if "statusCode" not in result:
            raise BadFunctionResponse("payload format 1.0 needs statusCode in the result")
        return _structured(result, v2=False)
    raise ValueError(f"payload_format must be '2.0' or '1.0', got {payload_format!r}")


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson refuses integers past 64 bits; json does not
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _structured(result: Mapping[str, Any], *, v2: bool) -> HttpResponse:
    status = _status(result["statusCode"])
    headers = _single_headers(result.get("headers"))
    if not v2:
        multi = _multi_headers(result.get("multiValueHeaders"))
        replaced = {name for name, _ in multi}
        headers = [h for h in headers if h[0] not in replaced] + multi
    else:
        headers.extend(_cookies(result.get("cookies")))
    body = _body(result.get("body"), result.get("isBase64Encoded", False))
    if body and not any(name == b"content-type" for name, _ in headers):
        headers.append((b"content-type", b"text/plain; charset=utf-8" if v2 else _JSON))
    return HttpResponse(status, headers, body)


def _status(value: Any) -> int:
    if isinstance(value, bool):
        raise BadFunctionResponse(f"statusCode must be an integer 200-599, got {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 200 <= value <= 599:
        raise BadFunctionResponse(f"statusCode must be an integer 200-599, got {value!r}")
    return value


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise BadFunctionResponse(f"{what} must be a string, got {type(value).__name__}")


def _header(name: Any, value: Any) -> tuple[bytes, bytes] | None:
    """One header as lower-case latin-1 bytes; None for the framing headers we drop."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise BadFunctionResponse(f"invalid response header name {name!r}")
    lower = name.lower()
    if lower in _FRAMING_HEADERS:
        return None
    text = _text(value, f"value of header {name!r}")
    if _CONTROL.search(text):
        what = "a line break" if "\r" in text or "\n" in text else "a control character"
        raise BadFunctionResponse(f"value of header {name!r} contains {what}")
    try:
        return lower.encode("latin-1"), text.encode("latin-1")
    except UnicodeEncodeError:
        raise BadFunctionResponse(
            f"header {name!r} is not latin-1 encodable; percent-encode or RFC 2047-encode it"
        ) from None


def _single_headers(value: Any) -> list[tuple[bytes, bytes]]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise BadFunctionResponse(f"headers must be an object, got {type(value).__name__}")
    out = []
    for name, item in value.items():
        if item is None:
            continue
        header = _header(name, item)
        if header is not None:
            out.append(header)
    return out


def _multi_headers(value: Any) -> list[tuple[bytes, bytes]]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise BadFunctionResponse(
            f"multiValueHeaders must be an object, got {type(value).__name__}"
        )
    out = []
    for name, items in value.items():
        if items is None:
            continue
        if not isinstance(items, list):
            raise BadFunctionResponse(
                f"multiValueHeaders[{name!r}] must be a list, got {type(items).__name__}"
            )
        for item in items:
            header = _header(name, item)
            if header is not None:
                out.append(header)
    return out


def _cookies(value: Any) -> list[tuple[bytes, bytes]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadFunctionResponse(f"cookies must be a list, got {type(value).__name__}")
    out = []
    for cookie in value:
        if not isinstance(cookie, str):
            raise BadFunctionResponse(f"each cookie must be a string, got {type(cookie).__name__}")
        header = _header("set-cookie", cookie)
        if header is not None:
            out.append(header)
    return out


def _body(value: Any, is_base64: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise BadFunctionResponse(
            f"body must be a string, got {type(value).__name__}; JSON-encode it first"
        )
    if is_base64 is True or (isinstance(is_base64, str) and is_base64.lower() == "true"):
        try:
            return base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise BadFunctionResponse("isBase64Encoded is true but body is not base64") from None
    return value.encode("utf-8")
