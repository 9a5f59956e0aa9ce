"""The gateway's ASGI app: HTTP routes to function invocations, plus the Lambda Invoke API.

Tracing: a request's W3C `traceparent` header is the parent of its invocation's span (none, or
an invalid one, starts a trace); the response's `traceresponse` header names the invocation's
span (`00-<trace id>-<span id>-<flags>`), so a client can look its trace up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from lamina.errors import (
    FunctionTimeout,
    InvocationError,
    ShuttingDown,
    Throttled,
)
from lamina.executor import Done, InvocationRequest
from lamina.gateway.asgi import BodyTooLarge, Receive, Scope, Send, read_request, send_response
from lamina.gateway.cors import CorsPolicy
from lamina.gateway.counts import RequestCounts
from lamina.gateway.events import http_api_v2_event, rest_v1_event
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
from lamina.gateway.routes import RouteMatch, Router
from lamina.invoker import InvocationOutcome, Invoker
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
        call = self._prepare(request)
        if isinstance(call, HttpResponse):
            return call
        return await self._invoke(call)

    def begin(
        self, request: HttpRequest, respond: Callable[[HttpResponse], None]
    ) -> HttpResponse | Awaitable[HttpResponse] | Callable[[], None]:
        """`handle` without a Task where it can: the answer now (no route, a preflight); or,
        when the request went straight to a free instance and `respond` will be given the
        answer, how to give up on it (the connection is closing without it); or else what to
        await for the answer (in a Task).

        Most requests are the second kind (see `FunctionPool.try_send`); a guarded route, an
        invocation that must wait for an instance, and the Invoke API take a Task."""
        if request.path.startswith(INVOKE_PREFIX):
            return self.invoke_api.handle(request)
        call = self._prepare(request)
        if isinstance(call, HttpResponse):
            return call
        if call.target.guard is None:
            call.respond = respond
            abandon = self.invoker.try_send(call.target.function_id, call.invocation, call.ended)
            if abandon is not None:
                call.abandon = abandon
                return call.cancel
        return self._invoke(call)

    def _prepare(self, request: HttpRequest) -> HttpResponse | _Call:
        """A request to a route, up to its invocation; or the answer when there is none."""
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
        if target.payload_format == "2.0":
            event = http_api_v2_event(request, match, request_id=request_id, time_epoch_ms=now_ms)
        else:
            event = rest_v1_event(request, match, request_id=request_id, time_epoch_ms=now_ms)
        invocation = InvocationRequest(
            request_id,
            event,
            on_log=FunctionOutput(target.function_id, request_id),
            trigger="http",
            traceparent=request.header(TRACEPARENT),
        )
        return _Call(self, request, match, event, invocation, extra, now_ms)

    async def _invoke(self, call: _Call) -> HttpResponse:
        """The rest of `handle`: the route's guard, then the invocation."""
        target, match = call.target, call.match
        guard = target.guard
        if guard is not None:
            request, event = call.request, call.event
            v2 = event if target.payload_format == "2.0" else None
            if v2 is None and guard.needs_v2_event:
                v2 = http_api_v2_event(
                    request,
                    match,
                    request_id=call.invocation.request_id,
                    time_epoch_ms=call.time_epoch_ms,
                )
            try:
                await guard.admit(request, event, v2)
            except AuthDenied as denied:
                response = _marked(json_error(denied.status, denied.message), denied.error_type)
                response.headers += denied.headers
                response.headers += call.extra
                self.requests.add(match.route, denied.status)
                return response
        try:
            outcome = await self.invoker.invoke(target.function_id, call.invocation)
        except (InvocationError, ShuttingDown) as exc:
            return self._answer(call, None, exc)
        return self._answer(call, outcome, None)

    def _answer(
        self, call: _Call, outcome: InvocationOutcome | None, error: BaseException | None
    ) -> HttpResponse:
        """The answer to `call`, from its invocation's outcome or its failure."""
        response = self._response(call, outcome, error)
        self.requests.add(call.match.route, response.status)
        extra = call.extra
        traceparent = call.invocation.traceparent
        if traceparent:  # the invocation's own span, made by the invoker
            extra.append((TRACERESPONSE, traceparent.encode()))
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

    def _response(
        self, call: _Call, outcome: InvocationOutcome | None, error: BaseException | None
    ) -> HttpResponse:
        if error is not None:
            if isinstance(error, InvocationError):
                return _lamina_error(error)
            if isinstance(error, ShuttingDown | asyncio.CancelledError):
                return _marked(json_error(503, "Service Unavailable"), "ShuttingDown")
            raise error  # the gateway's own failure: a 500
        assert outcome is not None
        result = outcome.result
        if not result.ok:
            failure = result.value if isinstance(result.value, dict) else {}
            response = json_error(502, "Internal Server Error")
            return _marked(response, str(failure.get("errorType", "Unhandled")))
        try:
            return http_response_from_result(result.value, call.target.payload_format)
        except BadFunctionResponse as exc:
            log.warning(
                "malformed function response",
                extra={
                    "function_id": call.target.function_id,
                    "request_id": call.invocation.request_id,
                    "error": str(exc),
                },
            )
            response = json_error(502, "Internal Server Error")
            response = _marked(response, "MalformedResponse")
            response.headers.append((b"x-lamina-error-message", _header_text(str(exc))))
            return response


class _Call:
    """A request on its way to its route's function; with `begin`, also what its instance
    calls when the invocation ends (`ended`)."""

    __slots__ = (
        "abandon",
        "app",
        "event",
        "extra",
        "invocation",
        "match",
        "request",
        "respond",
        "target",
        "time_epoch_ms",
    )

    def __init__(
        self,
        app: GatewayApp,
        request: HttpRequest,
        match: RouteMatch[RouteTarget],
        event: dict[str, Any],
        invocation: InvocationRequest,
        extra: list[tuple[bytes, bytes]],
        time_epoch_ms: int,
    ) -> None:
        self.app = app
        self.request = request
        self.match = match
        self.target = match.target
        self.event = event
        self.invocation = invocation
        self.extra = extra  # the gateway's own response headers
        self.time_epoch_ms = time_epoch_ms
        self.respond: Callable[[HttpResponse], None] | None = None
        self.abandon: Done | None = None  # gives up on the invocation `begin` sent

    def ended(self, outcome: InvocationOutcome | None, error: BaseException | None) -> None:
        """The invocation `begin` sent ended: answer, unless the connection gave up."""
        respond = self.respond
        if respond is None:
            return
        try:
            response = self.app._answer(self, outcome, error)
        except Exception:
            log.exception(
                "gateway error", extra={"method": self.request.method, "path": self.request.path}
            )
            response = json_error(500, "Internal Server Error")
        respond(response)

    def cancel(self) -> None:
        """The connection closes without the answer (shutdown, past its grace period): the
        invocation counts as cancelled, as a cancelled `handle` does, and its end is
        ignored."""
        self.respond = None
        if self.abandon is not None:
            self.abandon(None, asyncio.CancelledError())


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
