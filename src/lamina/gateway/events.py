"""HTTP request -> API Gateway Lambda proxy event, payload format 2.0 and 1.0. Pure.

The shapes follow AWS "Working with AWS Lambda proxy integrations for HTTP APIs" and the REST
"Lambda proxy integration input format". What we take from AWS beyond the documented examples:
- HTTP APIs hand the *decoded* path to the function (`rawPath` in 2.0, `path` in 1.0), while
  `rawQueryString` stays percent-encoded; live captures show `/a%2Fb` arriving as `/a/b`.
- 2.0: repeated headers and query parameters are joined with commas; the `cookie` header moves
  to `cookies` (one entry per cookie) and is not in `headers`; empty `cookies`,
  `queryStringParameters`, `pathParameters` and `body` are left out; with a named stage,
  `rawPath` and `requestContext.http.path` start with `/{stage}` (Powertools strips it).
- 1.0: `headers` / `queryStringParameters` carry the last value of a repeated name,
  `multiValueHeaders` / `multiValueQueryStringParameters` all of them; empty maps and the
  empty body are `null`; `path` has no stage prefix, `requestContext.path` has it.
- Like API Gateway, the gateway adds `x-forwarded-for` (the client address appended to any
  value the client sent), `x-forwarded-proto` and `x-forwarded-port` (replacing the client's),
  so Mangum and other adapters rebuild the right scheme, host and port.
- Body: sent as text when the content type is textual (text/*, JSON, XML, JavaScript) and the
  bytes are UTF-8; otherwise base64 with `isBase64Encoded` true. Form posts
  (application/x-www-form-urlencoded) and bodies without a content type are base64, as on
  HTTP APIs; Powertools and Mangum decode both forms.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:  # instances import this module to build events: it must stay light
    from lamina.gateway.request import HttpRequest
    from lamina.gateway.routes import RouteMatch

__all__ = [
    "ProxyEvent",
    "event_from_call",
    "format_request_time",
    "http_api_v2_event",
    "proxy_call",
    "rest_v1_event",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_SUBTYPES = frozenset({"json", "javascript", "xml", "ecmascript", "x-javascript"})


def format_request_time(time_epoch_ms: int) -> str:
    """`12/Mar/2020:19:03:58 +0000`, the CLF time AWS puts in `time` / `requestTime` (UTC)."""
    return _format_second(time_epoch_ms // 1000)


@functools.lru_cache(maxsize=4)
def _format_second(epoch_s: int) -> str:
    t = time.gmtime(epoch_s)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def _is_text_type(content_type: str | None) -> bool:
    """Whether a request body of this media type goes to the function as text."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    if main == "text":
        return True
    if main != "application":
        return False
    return sub in _TEXT_SUBTYPES or sub.endswith("+json") or sub.endswith("+xml")


def _encode_body(req: HttpRequest) -> tuple[str | None, bool]:
    """(body, isBase64Encoded); body None when the request has none."""
    if not req.body:
        return None, False
    if _is_text_type(req.header("content-type")):
        try:
            return req.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(req.body).decode("ascii"), True


def _first(headers: Sequence[Sequence[str]], name: str) -> str | None:
    """The first value of header `name` (lower-case), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def _forwarded(
    headers: Sequence[Sequence[str]], source_ip: str, scheme: str
) -> list[tuple[str, str]]:
    """The request headers with the x-forwarded-* headers API Gateway adds."""
    out: list[tuple[str, str]] = []
    forwarded_for: str | None = None
    for name, value in headers:
        if name == "x-forwarded-for":
            forwarded_for = value if forwarded_for is None else f"{forwarded_for}, {value}"
        elif name not in ("x-forwarded-proto", "x-forwarded-port"):
            out.append((name, value))
    out += _added_headers(source_ip, scheme, forwarded_for, _first(headers, "host"))
    return out


def _added_headers(
    source_ip: str, scheme: str, forwarded_for: str | None, host: str | None
) -> list[tuple[str, str]]:
    """The x-forwarded-* headers API Gateway adds, given the client's address, the scheme, the
    client's own x-forwarded-for (its values joined, None when it sent none) and its Host
    header."""
    out: list[tuple[str, str]] = []
    if source_ip:
        forwarded_for = source_ip if not forwarded_for else f"{forwarded_for}, {source_ip}"
    if forwarded_for is not None:
        out.append(("x-forwarded-for", forwarded_for))
    _, colon, port = (host or "").rpartition(":")
    if not (colon and port.isdigit()):
        port = "443" if scheme == "https" else "80"
    out.append(("x-forwarded-port", port))
    out.append(("x-forwarded-proto", scheme))
    return out


def _query_pairs(query_string: str) -> list[tuple[str, str]]:
    if not query_string:
        return []  # most requests: parse_qsl costs 0.6 µs even on nothing
    return parse_qsl(query_string, keep_blank_values=True, encoding="utf-8", errors="replace")


def _domain(domain_name: str | None, host: str | None) -> tuple[str, str]:
    """(domainName, domainPrefix): the configured name, else the Host header, else localhost."""
    domain = domain_name or host or "localhost"
    return domain, domain.split(".", 1)[0]


def _stage_prefix(stage: str) -> str:
    return "" if stage == "$default" else f"/{stage}"


# -- the compact form ------------------------------------------------------------------------
def proxy_call(
    req: HttpRequest,
    match: RouteMatch[Any],
    *,
    payload_format: str,
    request_id: str,
    time_epoch_ms: int,
    api_id: str = "lamina",
    account_id: str = "000000000000",
    stage: str = "$default",
    domain_name: str | None = None,
) -> list[Any]:
    """The event for `req`, which matched `match`, in compact form: a JSON-ready list of what
    `event_from_call` builds the event of payload format `payload_format` ("2.0" or "1.0")
    from. The body is already in the event's form (text or base64)."""
    body, is_base64 = _encode_body(req)
    route = match.route
    return [
        payload_format,
        request_id,
        time_epoch_ms,
        str(route),
        "$default" if route.is_default else route.path,
        match.path_params,
        req.method,
        req.path,
        req.query_string,
        req.headers,
        body,
        is_base64,
        req.source_ip,
        req.protocol,
        req.scheme,
        stage,
        api_id,
        account_id,
        domain_name,
    ]


def event_from_call(call: Sequence[Any]) -> dict[str, Any]:
    """The event a `proxy_call` list describes (after a trip through JSON or not)."""
    if call[0] == "2.0":
        return _v2_event(*call[1:])
    return _v1_event(*call[1:])


class ProxyEvent:
    """An API Gateway event not built yet: the compact form of its request (`proxy_call`).

    The gateway hands one to the invoker as the payload of a route's invocation. The local
    executor sends the compact form and the instance builds the event (`event_from_call`), off
    the gateway's event-loop thread, which serves every request: building the event and
    encoding it took that thread about 5% of its time per request (docs/benchmarks.md). Any
    other reader builds it with `event()`."""

    __slots__ = ("call",)

    def __init__(self, call: list[Any]) -> None:
        self.call = call

    def event(self) -> dict[str, Any]:
        return event_from_call(self.call)

    def __reduce__(self) -> tuple[Any, ...]:  # through Ray's pickling to a remote actor
        return (ProxyEvent, (self.call,))


# -- the two formats -------------------------------------------------------------------------
def http_api_v2_event(
    req: HttpRequest,
    match: RouteMatch[Any],
    *,
    request_id: str,
    time_epoch_ms: int,
    api_id: str = "lamina",
    account_id: str = "000000000000",
    stage: str = "$default",
    domain_name: str | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event for `req`, which matched `match`."""
    call = proxy_call(
        req,
        match,
        payload_format="2.0",
        request_id=request_id,
        time_epoch_ms=time_epoch_ms,
        api_id=api_id,
        account_id=account_id,
        stage=stage,
        domain_name=domain_name,
    )
    return event_from_call(call)


def rest_v1_event(
    req: HttpRequest,
    match: RouteMatch[Any],
    *,
    request_id: str,
    time_epoch_ms: int,
    api_id: str = "lamina",
    account_id: str = "000000000000",
    stage: str = "$default",
    domain_name: str | None = None,
) -> dict[str, Any]:
    """The payload format 1.0 (REST-style) event for `req`, which matched `match`."""
    call = proxy_call(
        req,
        match,
        payload_format="1.0",
        request_id=request_id,
        time_epoch_ms=time_epoch_ms,
        api_id=api_id,
        account_id=account_id,
        stage=stage,
        domain_name=domain_name,
    )
    return event_from_call(call)


def _v2_event(
    request_id: str,
    time_epoch_ms: int,
    route_key: str,
    resource: str,
    path_params: dict[str, str],
    method: str,
    raw_path: str,
    query_string: str,
    raw_headers: Sequence[Sequence[str]],
    body: str | None,
    is_base64: bool,
    source_ip: str,
    protocol: str,
    scheme: str,
    stage: str,
    api_id: str,
    account_id: str,
    domain_name: str | None,
) -> dict[str, Any]:
    """The payload format 2.0 event, in one pass over the headers (what `_forwarded` does,
    fused in): the largest piece of pure Python an invocation from a route costs."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    forwarded_for: str | None = None
    host = user_agent = None  # their first values
    for name, value in raw_headers:
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        elif name == "x-forwarded-for":
            forwarded_for = value if forwarded_for is None else f"{forwarded_for}, {value}"
        elif name == "x-forwarded-proto" or name == "x-forwarded-port":
            continue  # the gateway's own replace them
        elif name in headers:
            headers[name] = f"{headers[name]},{value}"
        else:
            headers[name] = value
            if name == "host":
                host = value
            elif name == "user-agent":
                user_agent = value
    headers.update(_added_headers(source_ip, scheme, forwarded_for, host))
    query: dict[str, str] = {}
    for key, value in _query_pairs(query_string):
        query[key] = f"{query[key]},{value}" if key in query else value
    domain, prefix = _domain(domain_name, host)
    path = _stage_prefix(stage) + raw_path

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query_string,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": prefix,
        "http": {
            "method": method,
            "path": path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": user_agent or "",
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": stage,
        "time": format_request_time(time_epoch_ms),
        "timeEpoch": time_epoch_ms,
    }
    if path_params:
        event["pathParameters"] = dict(path_params)
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = is_base64
    return event


def _v1_event(
    request_id: str,
    time_epoch_ms: int,
    route_key: str,
    resource: str,
    path_params: dict[str, str],
    method: str,
    path: str,
    query_string: str,
    raw_headers: Sequence[Sequence[str]],
    body: str | None,
    is_base64: bool,
    source_ip: str,
    protocol: str,
    scheme: str,
    stage: str,
    api_id: str,
    account_id: str,
    domain_name: str | None,
) -> dict[str, Any]:
    """The payload format 1.0 (REST-style) event."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in _forwarded(raw_headers, source_ip, scheme):
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in _query_pairs(query_string):
        query[key] = value
        multi_query.setdefault(key, []).append(value)
    domain, prefix = _domain(domain_name, _first(raw_headers, "host"))
    user_agent = _first(raw_headers, "user-agent") or ""

    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": prefix,
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "user": None,
                "userAgent": user_agent,
                "userArn": None,
            },
            "path": _stage_prefix(stage) + path,
            "protocol": protocol,
            "requestId": request_id,
            "requestTime": format_request_time(time_epoch_ms),
            "requestTimeEpoch": time_epoch_ms,
            "resourceId": None,
            "resourcePath": resource,
            "stage": stage,
        },
        "pathParameters": dict(path_params) or None,
        "stageVariables": None,
        "body": body,
        "isBase64Encoded": is_base64,
    }
