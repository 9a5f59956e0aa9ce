"""Lambda authorizers (`auth: {function: service.fn, ttl: 60}`), as HTTP APIs run them with
payload format 2.0 and simple responses (AWS "Working with AWS Lambda authorizers for HTTP
APIs"):

- The identity is the request's `identity` headers (default: `Authorization`). When one is
  missing or empty the gateway answers 401 `{"message": "Unauthorized"}` without calling the
  authorizer.
- The authorizer gets the request as a 2.0 event plus `"type": "REQUEST"`, `routeArn` and
  `identitySource` (the identity values), without the body, as trigger `authorizer`.
- It answers `{"isAuthorized": bool, "context": {...}}`. False: 403 `{"message":
  "Forbidden"}`. True: the route's function runs and sees `context` as
  `requestContext.authorizer.lambda` (2.0) or as `requestContext.authorizer` (1.0).
- An authorizer that fails, times out or answers anything else: 500
  `{"message": "Internal Server Error"}`, as API Gateway does.
- With `ttl` > 0 the answer (allow or deny) is cached per identity for `ttl` seconds; the
  cache holds at most `MAX_CACHED` identities (the oldest entry goes first).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.clock import Clock
from lamina.errors import InvocationError, ShuttingDown
from lamina.executor import InvocationRequest
from lamina.gateway.jwtauth import AuthDenied
from lamina.gateway.request import HttpRequest
from lamina.manifest.models import FunctionAuthorizer
from lamina.telemetry import FunctionOutput

__all__ = ["MAX_CACHED", "LambdaAuthorizer", "authorizer_event"]

log = logging.getLogger(__name__)

MAX_CACHED = 10_000
Invoke = Callable[[str, InvocationRequest], Awaitable[Any]]  # Invoker.invoke


def authorizer_event(
    request_event: dict[str, Any], identity: list[str], region: str = "us-east-1"
) -> dict[str, Any]:
    """The authorizer's event: the request's 2.0 event without its body, plus the REQUEST
    authorizer fields."""
    event = {k: v for k, v in request_event.items() if k not in ("body", "isBase64Encoded")}
    ctx = request_event["requestContext"]
    method, path = ctx["http"]["method"], ctx["http"]["path"]
    event["type"] = "REQUEST"
    event["routeArn"] = (
        f"arn:aws:execute-api:{region}:{ctx['accountId']}:{ctx['apiId']}/{ctx['stage']}"
        f"/{method}{path}"
    )
    event["identitySource"] = identity
    return event


class LambdaAuthorizer:
    """One route's authorizer function with its answer cache."""

    def __init__(self, spec: FunctionAuthorizer, invoke: Invoke, clock: Clock) -> None:
        self.spec = spec
        self._invoke = invoke
        self._clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, bool, dict[str, Any]]] = {}

    def identity(self, request: HttpRequest) -> list[str]:
        """The identity values; raises AuthDenied(401) when one is missing."""
        values = []
        for name in self.spec.identity:
            value = request.header(name)
            if not value:
                raise AuthDenied(401, "Unauthorized")
            values.append(value)
        return values

    async def authorize(
        self, identity: list[str], event: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """The context of an allowed request; raises AuthDenied (403 deny, 500 failure)."""
        key = tuple(identity)
        now = self._clock.monotonic()
        cached = self._cache.get(key) if self.spec.ttl else None
        if cached is not None and cached[0] > now:
            allowed, context = cached[1], cached[2]
        else:
            allowed, context = await self._ask(authorizer_event(event, identity), request_id)
            if self.spec.ttl:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = (now + self.spec.ttl, allowed, context)
        if not allowed:
            raise AuthDenied(403, "Forbidden")
        return context

    async def _ask(self, event: dict[str, Any], request_id: str) -> tuple[bool, dict[str, Any]]:
        fid = self.spec.function
        call = InvocationRequest(
            request_id, event, on_log=FunctionOutput(fid, request_id), trigger="authorizer"
        )
        try:
            outcome = await self._invoke(fid, call)
        except (InvocationError, ShuttingDown) as exc:
            log.warning("authorizer failed", extra={"function_id": fid, "error": str(exc)})
            raise AuthDenied(500, "Internal Server Error", error_type="AuthorizerFailure") from exc
        result = outcome.result
        answer = result.value if result.ok else None
        allowed = answer.get("isAuthorized") if isinstance(answer, dict) else None
        context = answer.get("context", {}) if isinstance(answer, dict) else None
        if not isinstance(allowed, bool) or not isinstance(context, dict | None):
            log.warning(
                "authorizer answered without a boolean isAuthorized",
                extra={"function_id": fid, "request_id": request_id, "answer": repr(answer)[:200]},
            )
            raise AuthDenied(500, "Internal Server Error", error_type="AuthorizerFailure")
        return allowed, context or {}
