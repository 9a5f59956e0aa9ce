"""The AWS Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), so that
`boto3.client("lambda", endpoint_url=...)` and the CLI can call functions.

A `traceparent` header is the parent of the invocation's span (`lamina.invoke` sends the calling
invocation's); for an `Event` it is stored with the event and used when it is delivered."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from lamina.errors import (
    FunctionNotFound,
    FunctionTimeout,
    InvocationError,
    ShuttingDown,
    Throttled,
)
from lamina.executor import InvocationRequest
from lamina.gateway.asgi import MAX_BODY_BYTES
from lamina.gateway.counts import INVOKE_ROUTE, RequestCounts
from lamina.gateway.ids import new_request_id
from lamina.gateway.request import HttpRequest
from lamina.gateway.responses import HttpResponse
from lamina.invoker import Invoker
from lamina.telemetry import FunctionOutput
from lamina.telemetry.tracing import TRACEPARENT

__all__ = [
    "INVOKE_PREFIX",
    "MAX_ASYNC_PAYLOAD",
    "InvokeApi",
    "SubmitEvent",
    "function_arn",
    "parse_function_name",
]

log = logging.getLogger(__name__)

INVOKE_PREFIX = "/2015-03-31/functions/"
MAX_ASYNC_PAYLOAD = 1024 * 1024  # bytes, AWS Lambda's limit for an asynchronous invocation

# (target: function id with its qualifier if any, JSON payload, request id, client context,
# traceparent): stores the event durably.
SubmitEvent = Callable[[str, bytes, str, Mapping[str, Any] | None, str | None], Awaitable[object]]
_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_ARN = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?(?P<name>[A-Za-z0-9_.\-]+)"
    r"(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_\-]+))?$"
)
REGION = "us-east-1"
ACCOUNT = "000000000000"
_JSON = (b"content-type", b"application/json")


def function_arn(function_id: str, region: str = REGION) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_id}"


def parse_function_name(raw: str) -> tuple[str, str | None]:
    """`users.signup`, `users.signup:$LATEST` or a full ARN -> (function id, qualifier)."""
    m = _ARN.match(unquote(raw))
    if m is None:
        raise ValueError(raw)
    return m.group("name"), m.group("qualifier")


def _aws_error(status: int, error_type: str, message: str, **extra: Any) -> HttpResponse:
    body = {"Type": "User", "message": message, **extra}
    return HttpResponse(
        status,
        [_JSON, (b"x-amzn-errortype", error_type.encode())],
        orjson.dumps(body),
    )


class InvokeApi:
    """Handles the Invoke API paths of the gateway port."""

    def __init__(
        self, invoker: Invoker, submit_event: SubmitEvent, requests: RequestCounts | None = None
    ) -> None:
        self.invoker = invoker
        self.submit_event = submit_event
        self.requests = requests  # responses by status, for the metrics

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one Invoke API request, read in full."""
        request_id = new_request_id()
        response = await self._handle(request, request_id)
        return self._answered(response, request_id)

    def too_large(self) -> HttpResponse:
        """The answer to a request whose body is over MAX_BODY_BYTES (not read)."""
        response = _aws_error(
            413, "RequestTooLargeException", f"Request must be smaller than {MAX_BODY_BYTES} bytes"
        )
        return self._answered(response, new_request_id())

    def _answered(self, response: HttpResponse, request_id: str) -> HttpResponse:
        if self.requests is not None:
            self.requests.add(INVOKE_ROUTE, response.status)
        response.headers.append((b"x-amzn-requestid", request_id.encode()))
        return response

    async def _handle(self, request: HttpRequest, request_id: str) -> HttpResponse:
        m = _PATH.match(request.path)
        if m is None or request.method != "POST":
            return _aws_error(404, "UnknownOperationException", "Unknown operation")
        try:
            function_id, qualifier = parse_function_name(m.group("name"))
        except ValueError:
            return _aws_error(
                400, "ValidationException", f"invalid function name {m.group('name')!r}"
            )
        # boto3 sends `Qualifier=` as a query parameter; a name may carry one too (`name:7`).
        query = parse_qs(request.query_string)
        qualifier = qualifier or next(iter(query.get("Qualifier", [])), None)
        target = f"{function_id}:{qualifier}" if qualifier else function_id
        if not self.invoker.knows(target):
            arn = function_arn(function_id) + (f":{qualifier}" if qualifier else "")
            return _aws_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        try:
            payload = orjson.Fragment(request.body) if request.body.strip() else {}
            if request.body.strip():
                orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            return _aws_error(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}",
            )
        try:
            client_context = _client_context(request.header("x-amz-client-context"))
        except ValueError as exc:
            return _aws_error(400, "InvalidRequestContentException", str(exc))
        kind = request.header("x-amz-invocation-type") or "RequestResponse"
        if kind == "DryRun":
            return HttpResponse(204, [], b"")
        if kind == "Event":
            if len(request.body) > MAX_ASYNC_PAYLOAD:
                return _aws_error(
                    413,
                    "RequestTooLargeException",
                    f"Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for the InvokeAsync "
                    f"operation; got {len(request.body)} bytes",
                )
            try:
                await self.submit_event(
                    target,  # its qualifier travels with the event, to every attempt
                    request.body.strip() or b"{}",
                    request_id,
                    client_context,
                    request.header(TRACEPARENT),
                )
            except ShuttingDown:
                return _aws_error(503, "ServiceException", "the platform is shutting down")
            return HttpResponse(202, [], b"")
        if kind != "RequestResponse":
            return _aws_error(
                400,
                "InvalidParameterValueException",
                f"X-Amz-Invocation-Type must be RequestResponse, Event or DryRun, got {kind!r}",
            )
        tail = (request.header("x-amz-log-type") or "None") == "Tail"
        output = FunctionOutput(function_id, request_id, keep_tail=tail)
        return await self._invoke(
            target,
            InvocationRequest(
                request_id, payload, client_context, output, traceparent=request.header(TRACEPARENT)
            ),
            output,
            tail,
        )

    async def _invoke(
        self, function_id: str, request: InvocationRequest, output: FunctionOutput, tail: bool
    ) -> HttpResponse:
        headers = [_JSON]
        try:
            outcome = await self.invoker.invoke(function_id, request)
        except Throttled:
            return _aws_error(
                429,
                "TooManyRequestsException",
                "Rate Exceeded.",
                Reason="ConcurrentInvocationLimitExceeded",
            )
        except FunctionNotFound as exc:
            return _aws_error(404, "ResourceNotFoundException", exc.message)
        except ShuttingDown:
            return _aws_error(503, "ServiceException", "the platform is shutting down")
        except InvocationError as exc:
            # The function failed without a result of its own: AWS reports these as function
            # errors (200 + X-Amz-Function-Error) with the runtime's error type.
            message = exc.message
            if isinstance(exc, FunctionTimeout):
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                message = f"{stamp}Z {request.request_id} {exc.message}"
            body = orjson.dumps({"errorMessage": message, "errorType": exc.error_type})
            if exc.version is not None:
                headers.append((b"x-amz-executed-version", exc.version.encode()))
            headers.append((b"x-amz-function-error", b"Unhandled"))
            headers.extend(_tail(output, tail))
            return HttpResponse(200, headers, body)
        result = outcome.result
        headers.append((b"x-amz-executed-version", outcome.version.encode()))
        if not result.ok:
            headers.append((b"x-amz-function-error", b"Unhandled"))
        headers.extend(_tail(output, tail))
        return HttpResponse(200, headers, orjson.dumps(result.value))


def _tail(output: FunctionOutput, wanted: bool) -> list[tuple[bytes, bytes]]:
    return [(b"x-amz-log-result", base64.b64encode(output.tail()))] if wanted else []


def _client_context(header: str | None) -> dict[str, Any] | None:
    if not header:
        return None
    try:
        value = orjson.loads(base64.b64decode(header, validate=True))
    except (binascii.Error, orjson.JSONDecodeError) as exc:
        raise ValueError(f"X-Amz-Client-Context must be base64-encoded JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("X-Amz-Client-Context must encode a JSON object")
    return value
