"""Typed, immutable models of a loaded `lamina.yaml`: app, services, functions, triggers.

The loader checks the YAML and builds these; other components read them and never the YAML.
Field constraints repeat the loader's checks so that specs built directly (in tests, or from a
future SAM importer) obey the same bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lamina.manifest.routekey import RouteKey

__all__ = [
    "AppSpec",
    "CorsSpec",
    "FunctionAuthorizer",
    "FunctionSpec",
    "GatewayAuthSpec",
    "GatewaySpec",
    "HttpTrigger",
    "JwtSpec",
    "QueueTrigger",
    "RateLimitSpec",
    "ScheduleTrigger",
    "ServiceSpec",
    "TableSpec",
    "TopicTrigger",
    "Trigger",
]

_NAME = r"^[A-Za-z0-9_-]+$"  # service, function, table names: no dots, ids use dots
_EVENT_NAME = r"^[A-Za-z0-9_-]{1,80}$"  # queue and topic names
_ATTRIBUTE = r'^[^"\\\x00-\x1f]*$'  # table attribute names: no quotes, backslashes
_ALIAS = r"^[A-Za-z0-9_-]{1,64}$"  # function alias names (not all digits: those are versions)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RateLimitSpec(_Frozen):
    """A token bucket: `rate` requests per second on average, bursts of up to `burst`."""

    rate: float = Field(gt=0, le=1_000_000)  # tokens added per second, (0, 1e6]
    burst: int = Field(ge=1, le=1_000_000)  # bucket size: requests at once, 1..1e6


class FunctionAuthorizer(_Frozen):
    """A Lambda authorizer. `kind` "http" (HTTP APIs, payload 2.0): `function` answers
    `{"isAuthorized": bool, "context": {...}}`. "token" and "request" (REST APIs): it gets a
    TOKEN event (the token and the method ARN) or a REQUEST event (the request, payload 1.0)
    and answers `{"principalId", "policyDocument": IAM policy, "context"}`."""

    function: str = Field(pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")  # "service.function"
    ttl: float = Field(default=0.0, ge=0, le=3600)  # s a result is cached per identity, 0..3600
    identity: tuple[str, ...] = ("authorization",)  # request headers (lower-case) naming the caller
    kind: Literal["http", "token", "request"] = "http"  # the event and answer shapes, see above
    validation: str | None = None  # token kind: a regex the token must match, else 401 unasked


class JwtSpec(_Frozen):
    """How JWTs are checked: HS256 with `secret`, RS256 with `public_key` (PEM), or RSA keys
    from a JWKS: `jwks_uri`, or, with none of the three, the `issuer`'s OIDC discovery
    (`{issuer}/.well-known/openid-configuration` names the `jwks_uri`), as HTTP APIs do."""

    secret: str | None = None  # HS256 shared secret
    public_key: str | None = None  # RS256 public key, PEM
    jwks_uri: str | None = None  # http(s) URL of a JSON Web Key Set
    issuer: str | None = None  # required `iss`; None: not checked
    audience: tuple[str, ...] = ()  # `aud` (or `client_id`) must name one; empty: not checked
    leeway: float = Field(default=0.0, ge=0, le=300)  # s of clock skew allowed for exp/nbf
    identity: str = "authorization"  # the request header (lower-case) carrying the token

    @model_validator(mode="after")
    def _one_key(self) -> JwtSpec:
        keys = [k for k in (self.secret, self.public_key, self.jwks_uri) if k is not None]
        if len(keys) > 1:
            raise ValueError("expected one of 'secret', 'public_key' or 'jwks_uri', not several")
        if not keys and not self.issuer:
            raise ValueError(
                "expected 'secret' (HS256), 'public_key' (RS256), 'jwks_uri', or an 'issuer' "
                "whose keys are found by OIDC discovery"
            )
        return self

    @property
    def uses_jwks(self) -> bool:
        """Whether keys come from a JWKS (given, or found by discovery) rather than the spec."""
        return self.secret is None and self.public_key is None


class _Aliased(_Frozen):
    """A trigger that names the function alias it invokes (see `lamina alias`)."""

    alias: str | None = Field(default=None, pattern=_ALIAS)  # None: the `live` alias

    @field_validator("alias")
    @classmethod
    def _not_a_version(cls, value: str | None) -> str | None:
        if value is not None and value.isdecimal():
            raise ValueError(f"an alias name is not only digits (that names a version): {value!r}")
        return value


class HttpTrigger(_Aliased):
    """An API gateway route that invokes the function with an HTTP API event."""

    route: RouteKey  # parsed route key, e.g. `GET /users/{id}` or `$default`
    format: Literal["2.0", "1.0"] = "2.0"  # payload format: HTTP API v2 or REST v1 proxy event
    # None: public; "jwt": gateway.auth.jwt; "api_key": x-api-key header; a Lambda authorizer;
    # or a JWT authorizer of the route's own (a SAM template's HTTP API authorizers)
    auth: Literal["jwt", "api_key"] | FunctionAuthorizer | JwtSpec | None = None
    scopes: tuple[str, ...] = ()  # with a JWT authorizer: the token needs one of them, else 403
    rate_limit: RateLimitSpec | None = None  # this route's own bucket; None: gateway.rate_limit

    @field_validator("route", mode="before")
    @classmethod
    def _parse_route(cls, value: Any) -> Any:
        return RouteKey.parse(value) if isinstance(value, str) else value


class ScheduleTrigger(_Aliased):
    """A schedule: `rate(N unit)` or `cron(6 fields)`; only the shape is checked here."""

    expression: str  # e.g. `rate(1 minute)`, `rate(10 seconds)`, `cron(0 12 * * ? *)`
    input: Any = None  # JSON-like payload passed as the event; None sends the scheduled event


class QueueTrigger(_Aliased):
    """A durable queue whose messages are delivered to the function in batches."""

    name: str = Field(pattern=_EVENT_NAME)
    batch_size: int = Field(default=10, ge=1, le=100)  # messages per invocation, 1..100
    batch_window: float = Field(default=0.0, ge=0, le=300)  # seconds to gather a batch, 0..300
    visibility_timeout: float = Field(default=30.0, gt=0, le=43200)  # lease seconds, (0, 43200]
    max_receive_count: int = Field(default=5, ge=1, le=1000)  # deliveries before dead-letter


class TopicTrigger(_Aliased):
    """A topic subscription; `filter_policy` follows the SNS filter policy shape."""

    name: str = Field(pattern=_EVENT_NAME)
    filter_policy: Mapping[str, Any] | None = None  # message attribute -> allowed values


Trigger = HttpTrigger | ScheduleTrigger | QueueTrigger | TopicTrigger


class TableSpec(_Frozen):
    """A service-owned table: partition key, optional sort key and TTL attribute."""

    key: str = Field(min_length=1, max_length=255, pattern=_ATTRIBUTE)  # partition key attribute
    sort: str | None = Field(None, min_length=1, max_length=255, pattern=_ATTRIBUTE)  # sort key
    ttl: str | None = Field(None, min_length=1, max_length=255, pattern=_ATTRIBUTE)  # epoch s

    @model_validator(mode="after")
    def _distinct(self) -> TableSpec:
        named = [n for n in (self.key, self.sort, self.ttl) if n is not None]
        if len(set(named)) != len(named):
            raise ValueError(f"key, sort and ttl must name different attributes, got {named}")
        return self


class AsyncSpec(_Frozen):
    """How asynchronous (`Event`) invocations of a function are retried, as on AWS Lambda."""

    max_retries: int = Field(default=2, ge=0, le=2)  # retries after the first attempt, 0..2
    backoff: float = Field(default=60.0, gt=0, le=3600)  # s before the first retry; doubles
    max_event_age: float = Field(default=21600.0, gt=0, le=21600)  # s an event may wait, <= 6 h


class FunctionSpec(_Frozen):
    """One function: its handler, limits, scaling bounds, environment and triggers."""

    id: str = ""  # "service.function"; filled in from `service` and `name` when omitted
    name: str = Field(pattern=_NAME)
    service: str = Field(pattern=_NAME)
    handler: str  # "module.attr" or "pkg.module.attr", importable from `path`
    path: Path = Path()  # the service's code folder (absolute when loaded); on sys.path
    memory: int = Field(default=128, ge=128, le=10240)  # MB, 128..10240
    cpu: float | None = Field(default=None, gt=0, le=64)  # CPUs (ray executor); None: memory/1769
    timeout: float = Field(default=3.0, gt=0, le=900)  # seconds per invocation, (0, 900]
    max_instances: int = Field(default=10, ge=1, le=1000)  # instances at most, 1..1000
    min_instances: int = Field(default=0, ge=0, le=1000)  # kept warm, 0..max_instances
    # idle seconds before an instance stops (>= 0), or "auto": the predictive keep-alive
    # policy (lamina.scaling.keepalive) learns it, and when to pre-warm, per function
    keep_alive: float | Literal["auto"] = Field(default=600.0)
    concurrency: int = Field(default=1, ge=1, le=1000)  # invocations at once per instance
    max_queued: int = Field(default=100, ge=0)  # invocations waiting when all instances busy
    queue_timeout: float = Field(default=10.0, gt=0)  # seconds a waiting invocation waits, then 429
    env: Mapping[str, str] = Field(default_factory=dict)  # this function's own variables
    service_env: Mapping[str, str] = Field(default_factory=dict)  # the service's variables
    requirements: Path | None = None  # the service's requirements file; None: the platform's env
    preload: tuple[str, ...] = ()  # modules the zygote imports before forking instances
    events: tuple[Trigger, ...] = ()  # triggers, in file order
    async_invoke: AsyncSpec = AsyncSpec()  # `async:` in YAML: retries of Event invocations

    @model_validator(mode="before")
    @classmethod
    def _fill_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id"):
            return {**data, "id": f"{data.get('service')}.{data.get('name')}"}
        return data

    @model_validator(mode="after")
    def _check(self) -> FunctionSpec:
        if self.id != f"{self.service}.{self.name}":
            raise ValueError(f"id must be '{self.service}.{self.name}', got {self.id!r}")
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) exceeds max_instances ({self.max_instances})"
            )
        return self

    @property
    def environment(self) -> dict[str, str]:
        """The process environment for instances: function `env` merged over service `env`."""
        return {**self.service_env, **self.env}


class ServiceSpec(_Frozen):
    """A microservice: its code folder, environment, tables and functions."""

    name: str = Field(pattern=_NAME)
    path: Path  # absolute code folder
    env: Mapping[str, str] = Field(default_factory=dict)  # shared by all its functions
    requirements: Path | None = None  # absolute requirements file: its own virtual environment
    tables: Mapping[str, TableSpec] = Field(default_factory=dict)  # by table name
    functions: Mapping[str, FunctionSpec] = Field(default_factory=dict)  # by name, file order


class CorsSpec(_Frozen):
    """Cross-origin requests the gateway allows, answering preflights itself."""

    origins: tuple[str, ...]  # exact origins like "https://app.example", or "*"
    methods: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")  # or "*"
    headers: tuple[str, ...] = ()  # request headers allowed (lower-case), or "*"
    expose_headers: tuple[str, ...] = ()  # response headers a browser script may read
    max_age: int = Field(default=0, ge=0, le=86400)  # s a browser may cache a preflight
    credentials: bool = False  # Access-Control-Allow-Credentials: true


class GatewayAuthSpec(_Frozen):
    """The authorizers routes may name."""

    jwt: JwtSpec | None = None


class GatewaySpec(_Frozen):
    """App-wide gateway settings: CORS, the default rate limit, authorizers."""

    cors: CorsSpec | None = None  # None: no CORS headers, preflights reach the routes
    rate_limit: RateLimitSpec | None = None  # each route's bucket unless it sets its own
    auth: GatewayAuthSpec = GatewayAuthSpec()


class AppSpec(_Frozen):
    """A whole app as declared in `lamina.yaml`."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    root: Path  # absolute app directory
    file: Path  # absolute path of lamina.yaml
    gateway: GatewaySpec = GatewaySpec()  # `gateway:` in YAML
    services: Mapping[str, ServiceSpec] = Field(default_factory=dict)  # by name, file order

    def functions(self) -> dict[str, FunctionSpec]:
        """Every function by id ("service.function"), in file order."""
        return {f.id: f for s in self.services.values() for f in s.functions.values()}

    def http_routes(self) -> list[tuple[RouteKey, HttpTrigger, str]]:
        """Every HTTP trigger as (route, trigger, function id), in file order."""
        return [
            (event.route, event, f.id)
            for f in self.functions().values()
            for event in f.events
            if isinstance(event, HttpTrigger)
        ]
