"""The gateway's ASGI app: HTTP routes to function invocations, plus the Lambda Invoke API.

Tracing: a request's W3C `traceparent` header is the parent of its invocation's span (none, or
an invalid one, starts a trace); the response's `traceresponse` header names the invocation's
span (`00-<trace id>-<span id>-<flags>`), so a client can look its trace up."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from lamina.errors import (
    FunctionTimeout,
    InvocationError,
    ShuttingDown,
    Throttled,
)
from lamina.executor import InvocationRequest
from lamina.gateway.asgi import BodyTooLarge, Receive, Scope, Send, read_request, send_response
from lamina.gateway.cors import CorsPolicy
from lamina.gateway.counts import RequestCounts
from lamina.gateway.events import ProxyEvent, http_api_v2_event, proxy_call, rest_v1_event
from lamina.gateway.guard import RouteGuard
from lamina.gateway.ids import new_request_id
from lamina.gateway.invoke_api import INVOKE_PREFIX, InvokeApi, SubmitEvent
from lamina.gateway.jwtauth import AuthDenied
from lamina.gateway.request import HttpRequest
from lamina.gateway.responses import (
    BadFunctionResponse,
    HttpResponse,
    http_response_from_result,
    json_error,
)
from lamina.gateway.routes import Router
from lamina.invoker import Invoker
from lamina.manifest.routekey import RouteKey
from lamina.telemetry import FunctionOutput
from lamina.telemetry.tracing import TRACEPARENT

__all__ = ["GatewayApp", "RouteTarget"]

log = logging.getLogger(__name__)

ERROR_HEADER = b"x-lamina-error"  # marks responses that Lamina produced, not the function
TRACERESPONSE = b"traceresponse"  # W3C Trace Context Level 2: the server's span


@dataclass(frozen=True, slots=True)
class RouteTarget:
    function_id: str
    payload_format: Literal["2.0", "1.0"]
    guard: RouteGuard | None = None  # auth and rate limit; None: public and unlimited


class GatewayApp:
    """Match a route, build the API Gateway event, invoke, map the result back.

    `handle(request)` answers a request read in full; the HTTP front (`gateway.http1`) calls
    it directly. The object is also an ASGI app, for other servers (`--http granian`)."""

    def __init__(
        self,
        routes: list[tuple[RouteKey, RouteTarget]],
        invoker: Invoker,
        submit_event: SubmitEvent,
        *,
        cors: CorsPolicy | None = None,
    ) -> None:
        self.router: Router[RouteTarget] = Router(routes)
        self.cors = cors  # None: no CORS headers, OPTIONS requests are routed like any other
        self.invoker = invoker
        self.requests = RequestCounts(route for route, _ in routes)  # for the metrics
        self.invoke_api = InvokeApi(invoker, submit_event, self.requests)

    def set_routes(self, routes: list[tuple[RouteKey, RouteTarget]]) -> None:
        """Serve `routes` from now on (hot reload): one assignment, so each request matches
        against either the old table or the new one, never a mix."""
        self.requests.label(route for route, _ in routes)
        self.router = Router(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The gateway as an ASGI app (`--http granian`, or any ASGI server)."""
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return
        try:
            request = await read_request(scope, receive)
        except BodyTooLarge:
            response = self.too_large(scope["method"], scope["path"])
        else:
            response = await self.handle(request)
        await send_response(send, response, head=scope["method"] == "HEAD")

    def too_large(self, method: str, path: str) -> HttpResponse:
        """The answer to a request whose body is over MAX_BODY_BYTES (not read)."""
        if path.startswith(INVOKE_PREFIX):
            return self.invoke_api.too_large()
        refused = self.router.match(method, path)
        self.requests.add(refused.route if refused else None, 413)
        response = json_error(413, "Request Entity Too Large")
        response.headers += _request_id_headers(new_request_id())
        return response

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request read in full: the Invoke API, or a route's function."""
        if request.path.startswith(INVOKE_PREFIX):
            return await self.invoke_api.handle(request)
        request_id = new_request_id()
        extra = _request_id_headers(request_id)
        if self.cors is not None:
            extra += self._cors_headers(request)
            if request.method == "OPTIONS" and request.header("access-control-request-method"):
                self.requests.add(None, 204)  # a preflight, answered here
                return HttpResponse(204, extra, b"")
        match = self.router.match(request.method, request.path)
        if match is None:
            self.requests.add(None, 404)
            response = json_error(404, "Not Found")
            response.headers += extra
            return response
        target = match.target
        now_ms = int(time.time() * 1000)
        guard = target.guard
        event: dict[str, Any] | ProxyEvent
        if guard is None:  # the instance builds the event: this thread serves every request
            event = ProxyEvent(
                proxy_call(
                    request,
                    match,
                    payload_format=target.payload_format,
                    request_id=request_id,
                    time_epoch_ms=now_ms,
                )
            )
        else:
            if target.payload_format == "2.0":
                event = http_api_v2_event(
                    request, match, request_id=request_id, time_epoch_ms=now_ms
                )
            else:
                event = rest_v1_event(request, match, request_id=request_id, time_epoch_ms=now_ms)
            v2 = event if target.payload_format == "2.0" else None
            if v2 is None and guard.needs_v2_event:
                v2 = http_api_v2_event(request, match, request_id=request_id, time_epoch_ms=now_ms)
            try:
                await guard.admit(request, event, v2)
            except AuthDenied as denied:
                response = _marked(json_error(denied.status, denied.message), denied.error_type)
                response.headers += denied.headers
                response.headers += extra
                self.requests.add(match.route, denied.status)
                return response
        fid = target.function_id
        call = InvocationRequest(
            request_id,
            event,
            on_log=FunctionOutput(fid, request_id),
            trigger="http",
            traceparent=request.header(TRACEPARENT),
        )
        response = await self._invoke(target, call)
        self.requests.add(match.route, response.status)
        if call.traceparent:  # the invocation's own span, once the invoker has made it
            extra.append((TRACERESPONSE, call.traceparent.encode()))
        if self.cors is not None:  # the gateway's CORS headers replace the function's
            response.headers = CorsPolicy.strip(response.headers)
        response.headers += extra
        return response

    def _cors_headers(self, request: HttpRequest) -> list[tuple[bytes, bytes]]:
        """The CORS headers for this request: a preflight's, or an actual response's."""
        assert self.cors is not None
        origin = request.header("origin")
        if origin is None:
            return []
        asked = request.header("access-control-request-method")
        if request.method == "OPTIONS" and asked:
            return self.cors.preflight(
                origin, asked, request.header("access-control-request-headers")
            )
        return self.cors.response_headers(origin)

    async def _invoke(self, target: RouteTarget, call: InvocationRequest) -> HttpResponse:
        fid, request_id = target.function_id, call.request_id
        try:
            outcome = await self.invoker.invoke(fid, call)
        except InvocationError as exc:
            return _lamina_error(exc)
        except ShuttingDown:
            return _marked(json_error(503, "Service Unavailable"), "ShuttingDown")
        result = outcome.result
        if not result.ok:
            error = result.value if isinstance(result.value, dict) else {}
            response = json_error(502, "Internal Server Error")
            return _marked(response, str(error.get("errorType", "Unhandled")))
        try:
            return http_response_from_result(result.value, target.payload_format)
        except BadFunctionResponse as exc:
            log.warning(
                "malformed function response",
                extra={"function_id": fid, "request_id": request_id, "error": str(exc)},
            )
            response = json_error(502, "Internal Server Error")
            response = _marked(response, "MalformedResponse")
            response.headers.append((b"x-lamina-error-message", _header_text(str(exc))))
            return response


def _request_id_headers(request_id: str) -> list[tuple[bytes, bytes]]:
    encoded = request_id.encode()
    return [(b"x-amzn-requestid", encoded), (b"apigw-requestid", encoded)]


def _lamina_error(exc: InvocationError) -> HttpResponse:
    """Platform outcomes as API Gateway reports them, marked as Lamina's own."""
    if isinstance(exc, Throttled):
        response = json_error(429, "Too Many Requests")
    elif isinstance(exc, FunctionTimeout):
        response = json_error(504, "Endpoint request timed out")
    else:  # crashed, out of memory, init failed, malformed result
        response = json_error(502, "Internal Server Error")
    log.warning(
        "invocation failed",
        extra={"function_id": exc.function_id, "request_id": exc.request_id, "error": str(exc)},
    )
    response = _marked(response, exc.error_type)
    response.headers.append((b"x-lamina-error-message", _header_text(exc.message)))
    return response


def _marked(response: HttpResponse, error_type: str) -> HttpResponse:
    response.headers.append((ERROR_HEADER, _header_text(error_type)))
    return response


def _header_text(text: str) -> bytes:
    return text.replace("\r", " ").replace("\n", " ")[:1024].encode("latin-1", "replace")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
