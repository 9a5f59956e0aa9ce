"""What the gateway checks before a route's function runs, decided once per route at start.

A route without `auth` or a rate limit gets no guard at all, so its requests pay for nothing
here. A guarded route runs, in order: its rate limit (token bucket; 429 `Too Many Requests`
with `Retry-After`), then its authorizer (JWT with a secret, a PEM key or an issuer's key
set, API key with its usage plan, or a Lambda authorizer). A refusal is an `AuthDenied`,
which the gateway turns into the JSON response; an admitted request's event gets
`requestContext.authorizer` as API Gateway fills it.
"""

from __future__ import annotations

from typing import Any, Literal

from lamina.clock import Clock
from lamina.gateway.apikeys import ApiKeys
from lamina.gateway.authorizer import Invoke, LambdaAuthorizer
from lamina.gateway.cors import CorsPolicy
from lamina.gateway.jwks import JwksKeys
from lamina.gateway.jwtauth import AuthDenied, JwtVerifier
from lamina.gateway.ratelimit import TokenBucket, retry_after_header
from lamina.gateway.request import HttpRequest
from lamina.manifest.models import AppSpec, FunctionAuthorizer, HttpTrigger, JwtSpec
from lamina.store.types import ApiKeyStore

__all__ = ["GatewaySecurity", "RouteGuard"]


class RouteGuard:
    """One route's checks; `admit` raises AuthDenied or fills the event's authorizer."""

    __slots__ = ("_api_keys", "_bucket", "_clock", "_jwt", "_lambda", "_scopes", "payload_format")

    def __init__(
        self,
        clock: Clock,
        payload_format: Literal["2.0", "1.0"],
        *,
        bucket: TokenBucket | None = None,
        jwt: JwtVerifier | None = None,
        scopes: tuple[str, ...] = (),
        api_keys: ApiKeys | None = None,
        lambda_authorizer: LambdaAuthorizer | None = None,
    ) -> None:
        self._clock = clock
        self.payload_format = payload_format
        self._bucket = bucket
        self._jwt = jwt
        self._scopes = scopes
        self._api_keys = api_keys
        self._lambda = lambda_authorizer

    async def admit(
        self, request: HttpRequest, event: dict[str, Any], authorizer_event: dict[str, Any] | None
    ) -> None:
        """Check `request`; on success set `event["requestContext"]["authorizer"]`.
        `authorizer_event` is the request's 2.0 event (needed by a Lambda authorizer only)."""
        if self._bucket is not None:
            wait = self._bucket.take(self._clock.monotonic())
            if wait:
                headers = [(b"retry-after", retry_after_header(wait))]
                raise AuthDenied(429, "Too Many Requests", headers, error_type="RateLimited")
        v2 = self.payload_format == "2.0"
        ctx = event["requestContext"]
        if self._jwt is not None:
            found = await self._jwt.check(
                request.header(self._jwt.identity), self._clock.wall(), self._scopes
            )
            if v2:
                ctx["authorizer"] = {"jwt": {"claims": found.claims, "scopes": found.scopes}}
            else:
                ctx["authorizer"] = {"claims": found.claims, "scopes": found.scopes}
        elif self._api_keys is not None:
            key = self._api_keys.check(request.header("x-api-key"))
            if v2:  # HTTP APIs have no API keys; Lamina names the key here
                ctx["authorizer"] = {"apiKey": {"id": key.id, "name": key.name}}
            else:  # where REST APIs put it
                ctx["identity"]["apiKey"] = request.header("x-api-key")
                ctx["identity"]["apiKeyId"] = key.id
        elif self._lambda is not None:
            identity = self._lambda.identity(request)
            asked = authorizer_event if self._lambda.needs_v2_event else event
            assert asked is not None
            request_id = ctx["requestId"]
            context = await self._lambda.authorize(identity, asked, request_id)
            ctx["authorizer"] = {"lambda": context} if v2 else {**context}

    @property
    def needs_v2_event(self) -> bool:
        """Whether `admit` needs the request's 2.0 event besides the route's own."""
        return self._lambda is not None and self._lambda.needs_v2_event


class GatewaySecurity:
    """The app's `gateway:` settings made into objects: the CORS policy, the API keys, and a
    guard for each route that needs one. `start()` loads the keys; `stop()` saves usage."""

    def __init__(self, app: AppSpec, invoke: Invoke, store: ApiKeyStore, clock: Clock) -> None:
        gateway = app.gateway
        self._app = app
        self._invoke = invoke
        self._clock = clock
        self.cors = CorsPolicy(gateway.cors) if gateway.cors is not None else None
        self.api_keys = ApiKeys(store, clock)
        self._jwt = self._verifier(gateway.auth.jwt) if gateway.auth.jwt is not None else None
        self._authorizers: dict[FunctionAuthorizer, LambdaAuthorizer] = {}
        self._verifiers: dict[JwtSpec, JwtVerifier] = {}  # routes' own JWT authorizers

    def _verifier(self, spec: JwtSpec) -> JwtVerifier:
        """A verifier for `spec`; one with keys from a JWKS fetches them on first use."""
        if not spec.uses_jwks:
            return JwtVerifier(spec)
        keys = JwksKeys(self._clock, jwks_uri=spec.jwks_uri, issuer=spec.issuer)
        return JwtVerifier(spec, keys)

    async def start(self) -> None:
        uses_keys = any(t.auth == "api_key" for _, t, _ in self._app.http_routes())
        await self.api_keys.start(refresh=uses_keys)

    async def stop(self) -> None:
        await self.api_keys.stop()

    def guard(self, trigger: HttpTrigger) -> RouteGuard | None:
        """The route's guard, or None when it is public and unlimited."""
        limit = trigger.rate_limit or self._app.gateway.rate_limit
        auth = trigger.auth
        if limit is None and auth is None:
            return None
        fields: dict[str, Any] = {}
        if limit is not None:
            fields["bucket"] = TokenBucket.of(limit, self._clock.monotonic())
        if auth == "jwt":
            if self._jwt is None:
                raise ValueError(f"route {trigger.route}: auth jwt needs gateway.auth.jwt")
            fields["jwt"] = self._jwt
            fields["scopes"] = trigger.scopes
        elif isinstance(auth, JwtSpec):
            verifier = self._verifiers.get(auth)  # one key set per authorizer configuration
            if verifier is None:
                verifier = self._verifiers[auth] = self._verifier(auth)
            fields["jwt"] = verifier
            fields["scopes"] = trigger.scopes
        elif auth == "api_key":
            fields["api_keys"] = self.api_keys
        elif isinstance(auth, FunctionAuthorizer):
            authorizer = self._authorizers.get(auth)  # one cache per authorizer configuration
            if authorizer is None:
                authorizer = LambdaAuthorizer(auth, self._invoke, self._clock)
                self._authorizers[auth] = authorizer
            fields["lambda_authorizer"] = authorizer
        return RouteGuard(self._clock, trigger.format, **fields)
