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

REST API authorizers (kinds `token` and `request`, from SAM templates; AWS "Use API Gateway
Lambda authorizers") differ: a TOKEN authorizer gets `{"type": "TOKEN", "authorizationToken",
"methodArn"}` (a token not matching `validation` is refused 401 unasked); a REQUEST
authorizer gets the request's 1.0 event without its body plus `type` and `methodArn`. They
answer `{"principalId", "policyDocument", "context"}`; the policy is evaluated against the
request's method ARN (`lamina.gateway.iampolicy`), also when the answer comes from the cache,
as API Gateway does. Denied: 403. An authorizer failing with the message `Unauthorized`:
401. The function sees `requestContext.authorizer` = `{"principalId", **context}`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lamina.clock import Clock
from lamina.errors import InvocationError, ShuttingDown
from lamina.executor import InvocationRequest
from lamina.gateway.iampolicy import PolicyError, allows
from lamina.gateway.jwtauth import AuthDenied
from lamina.gateway.request import HttpRequest
from lamina.manifest.models import FunctionAuthorizer
from lamina.telemetry import FunctionOutput

__all__ = ["MAX_CACHED", "LambdaAuthorizer", "authorizer_event", "method_arn"]

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
        self._validation = re.compile(spec.validation) if spec.validation else None
        self._cache: dict[tuple[str, ...], tuple[float, _Answer]] = {}

    @property
    def needs_v2_event(self) -> bool:
        """Whether `authorize` takes the request's 2.0 event (HTTP API authorizers)."""
        return self.spec.kind == "http"

    def identity(self, request: HttpRequest) -> list[str]:
        """The identity values; raises AuthDenied(401) when one is missing (or, for a TOKEN
        authorizer, does not match its validation expression)."""
        values = []
        for name in self.spec.identity:
            value = request.header(name)
            if not value:
                raise AuthDenied(401, "Unauthorized")
            values.append(value)
        if self._validation is not None and not self._validation.fullmatch(values[0]):
            raise AuthDenied(401, "Unauthorized")
        return values

    async def authorize(
        self, identity: list[str], event: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """The context of an allowed request; raises AuthDenied (401, 403 deny, 500 failure).
        `event`: the request's 2.0 event (HTTP API authorizers) or 1.0 event (REST)."""
        key = tuple(identity)
        now = self._clock.monotonic()
        cached = self._cache.get(key) if self.spec.ttl else None
        arn = "" if self.spec.kind == "http" else method_arn(event)
        if cached is not None and cached[0] > now:
            answer = cached[1]
        else:
            answer = await self._ask(self._event(identity, event, arn), request_id)
            if self.spec.ttl:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = (now + self.spec.ttl, answer)
        if not answer.allows(arn):
            raise AuthDenied(403, "Forbidden")
        return answer.context

    def _event(self, identity: list[str], event: dict[str, Any], arn: str) -> dict[str, Any]:
        if self.spec.kind == "http":
            return authorizer_event(event, identity)
        if self.spec.kind == "token":
            return {"type": "TOKEN", "authorizationToken": identity[0], "methodArn": arn}
        request = {k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")}
        return {"type": "REQUEST", "methodArn": arn, **request}

    async def _ask(self, event: dict[str, Any], request_id: str) -> _Answer:
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
        if self.spec.kind != "http" and not result.ok and _says_unauthorized(result.value):
            raise AuthDenied(401, "Unauthorized")  # REST: `raise Exception("Unauthorized")`
        answer = _answer(self.spec.kind, result.value if result.ok else None)
        if answer is None:
            log.warning(
                "authorizer answered without a boolean isAuthorized"
                if self.spec.kind == "http"
                else "authorizer answered without a principalId and policyDocument",
                extra={
                    "function_id": fid,
                    "request_id": request_id,
                    "answer": repr(result.value)[:200],
                },
            )
            raise AuthDenied(500, "Internal Server Error", error_type="AuthorizerFailure")
        return answer


@dataclass(frozen=True, slots=True)
class _Answer:
    """An authorizer's answer: a yes/no (HTTP APIs) or a policy (REST APIs), and the context
    the function sees."""

    allowed: bool | None  # None: decided by `policy` for each method ARN
    policy: Any
    context: dict[str, Any]

    def allows(self, arn: str) -> bool:
        return self.allowed if self.allowed is not None else allows(self.policy, arn)


def _answer(kind: str, value: Any) -> _Answer | None:
    """The answer in `value`, or None when it has not the expected shape."""
    if not isinstance(value, dict):
        return None
    context = value.get("context", {})
    if not isinstance(context, dict | None):
        return None
    if kind == "http":
        allowed = value.get("isAuthorized")
        return _Answer(allowed, None, context or {}) if isinstance(allowed, bool) else None
    principal, policy = value.get("principalId"), value.get("policyDocument")
    if not isinstance(principal, str | int) or not isinstance(policy, dict):
        return None
    try:
        allows(policy, "arn:aws:execute-api:check")  # the shape, once, before it is cached
    except PolicyError:
        return None
    return _Answer(None, policy, {"principalId": principal, **(context or {})})


def _says_unauthorized(error: Any) -> bool:
    return isinstance(error, dict) and error.get("errorMessage") == "Unauthorized"


def method_arn(event: dict[str, Any], region: str = "us-east-1") -> str:
    """The method ARN of a 1.0 event's request, as REST API authorizers get it."""
    ctx = event["requestContext"]
    return (
        f"arn:aws:execute-api:{region}:{ctx['accountId']}:{ctx['apiId']}/{ctx['stage']}"
        f"/{event['httpMethod']}{event['path']}"
    )
