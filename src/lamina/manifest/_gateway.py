"""Parse the app-level `gateway:` section and the security keys of an http trigger.

    gateway:
      cors: {origins: [...], methods: [...], headers: [...], max_age: 600}
      rate_limit: {rate: 100, burst: 200}
      auth:
        jwt: {secret: "${env:JWT_SECRET}", issuer: ..., audience: ...}   # or public_key: (RS256)

Strings in `gateway.auth` may be `${env:NAME}` references (whole value or part of it), read
from the environment the manifest is loaded in; an unset variable is an error naming it.
A route's `auth` is `jwt`, `api_key` or `{function: service.fn, ttl: 60}`; whether the named
authorizer or function exists is checked by the loader once the whole file is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lamina.manifest._check import Checker, build, describe, unknown_key
from lamina.manifest._yamlpos import child
from lamina.manifest.models import (
    CorsSpec,
    FunctionAuthorizer,
    GatewayAuthSpec,
    GatewaySpec,
    JwtSpec,
    RateLimitSpec,
)

__all__ = ["AUTH_KINDS", "parse_auth", "parse_gateway", "parse_rate_limit", "parse_scopes"]

AUTH_KINDS = ("jwt", "api_key")
GATEWAY_KEYS = ("cors", "rate_limit", "auth")
CORS_KEYS = ("origins", "methods", "headers", "expose_headers", "max_age", "credentials")
JWT_KEYS = ("secret", "public_key", "issuer", "audience", "leeway")
AUTHORIZER_KEYS = ("function", "ttl", "identity")
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_FUNCTION_ID = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def parse_gateway(check: Checker, value: Any, env: Mapping[str, str]) -> GatewaySpec:
    body = check.mapping(value, "gateway", allowed=GATEWAY_KEYS)
    fields: dict[str, Any] = {}
    if body.get("cors") is not None:
        fields["cors"] = _cors(check, body["cors"], "gateway.cors")
    if body.get("rate_limit") is not None:
        fields["rate_limit"] = parse_rate_limit(check, body["rate_limit"], "gateway.rate_limit")
    auth = check.mapping(body.get("auth"), "gateway.auth", allowed=("jwt",))
    if auth.get("jwt") is not None:
        jwt = _jwt(check, auth["jwt"], "gateway.auth.jwt", env)
        fields["auth"] = build(check, GatewayAuthSpec, "gateway.auth", jwt=jwt)
    return build(check, GatewaySpec, "gateway", **fields)


def parse_rate_limit(check: Checker, value: Any, path: str) -> RateLimitSpec:
    body = check.mapping(value, path, allowed=("rate", "burst"), required=("rate", "burst"))
    rate = body["rate"]
    if not (isinstance(rate, int | float) and not isinstance(rate, bool) and 0 < rate <= 1_000_000):
        check.fail(child(path, "rate"), f"expected requests per second > 0, got {describe(rate)}")
    burst = check.integer(body["burst"], child(path, "burst"), 1, 1_000_000, "requests")
    return build(check, RateLimitSpec, path, rate=float(rate), burst=burst)


def parse_scopes(check: Checker, value: Any, path: str) -> tuple[str, ...]:
    items = check.sequence(value, path, what="a list of scope names")
    return tuple(
        check.string(item, child(path, i), what="a scope name like 'orders:write'")
        for i, item in enumerate(items)
    )


def parse_auth(check: Checker, value: Any, path: str) -> str | FunctionAuthorizer:
    """`jwt`, `api_key`, or a Lambda authorizer mapping."""
    if isinstance(value, dict):
        body = check.mapping(value, path, allowed=AUTHORIZER_KEYS, required=("function",))
        fid = body["function"]
        if not isinstance(fid, str) or not _FUNCTION_ID.match(fid):
            check.fail(
                child(path, "function"),
                f"expected a function id 'service.function', got {describe(fid)}",
            )
        fields: dict[str, Any] = {"function": fid}
        if "ttl" in body:
            fields["ttl"] = check.seconds(body["ttl"], child(path, "ttl"), positive=False, hi=3600)
        if "identity" in body:
            fields["identity"] = _headers(check, body["identity"], child(path, "identity"))
        return build(check, FunctionAuthorizer, path, **fields)
    text = check.string(
        value, path, what="'jwt', 'api_key' or {function: service.fn} (a Lambda authorizer)"
    )
    if text not in AUTH_KINDS:
        check.fail(path, unknown_key(text, AUTH_KINDS, "authorizer"))
    return text


def _cors(check: Checker, value: Any, path: str) -> CorsSpec:
    body = check.mapping(value, path, allowed=CORS_KEYS, required=("origins",))
    fields: dict[str, Any] = {"origins": _origins(check, body["origins"], child(path, "origins"))}
    if "methods" in body:
        fields["methods"] = _methods(check, body["methods"], child(path, "methods"))
    for key in ("headers", "expose_headers"):
        if key in body:
            fields[key] = _headers(check, body[key], child(path, key))
    if "max_age" in body:
        fields["max_age"] = check.integer(body["max_age"], child(path, "max_age"), 0, 86400, "s")
    if "credentials" in body:
        credentials = body["credentials"]
        if not isinstance(credentials, bool):
            check.fail(
                child(path, "credentials"), f"expected true or false, got {describe(credentials)}"
            )
        if credentials and "*" in fields["origins"]:
            check.fail(
                child(path, "credentials"),
                "credentials: true needs explicit origins; browsers refuse it with '*'",
            )
        fields["credentials"] = credentials
    return build(check, CorsSpec, path, **fields)


def _methods(check: Checker, value: Any, path: str) -> tuple[str, ...]:
    methods = []
    for i, item in enumerate(check.sequence(value, path, what="a list of methods")):
        method = item.upper() if isinstance(item, str) else item
        if method not in _METHODS:
            check.fail(
                child(path, i), f"expected one of {', '.join(_METHODS)}, got {describe(item)}"
            )
        methods.append(method)
    return tuple(methods)


def _origins(check: Checker, value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    items = check.sequence(value, path, what="a list of origins like 'https://app.example'")
    if not items:
        check.fail(path, "expected at least one origin like 'https://app.example', or '*'")
    origins = []
    for i, item in enumerate(items):
        ok = isinstance(item, str) and (
            item == "*" or (item.startswith(("http://", "https://")) and not item.endswith("/"))
        )
        if not ok:
            check.fail(
                child(path, i),
                "expected an origin like 'https://app.example' (scheme and host, no path) or "
                f"'*', got {describe(item)}",
            )
        origins.append(item)
    return tuple(origins)


def _headers(check: Checker, value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    items = check.sequence(value, path, what="a list of header names")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not (item == "*" or _HEADER.match(item)):
            check.fail(child(path, i), f"expected a header name, got {describe(item)}")
        out.append(item.lower())
    return tuple(out)


def _jwt(check: Checker, value: Any, path: str, env: Mapping[str, str]) -> JwtSpec:
    body = check.mapping(value, path, allowed=JWT_KEYS)
    fields: dict[str, Any] = {}
    for key in ("secret", "public_key", "issuer"):
        if body.get(key) is not None:
            at = child(path, key)
            fields[key] = _expand(check, check.string(body[key], at), at, env)
    if ("secret" in fields) == ("public_key" in fields):
        check.fail(path, "expected exactly one of 'secret' (HS256) or 'public_key' (RS256)")
    if "public_key" in fields and "BEGIN PUBLIC KEY" not in fields["public_key"]:
        check.fail(
            child(path, "public_key"),
            "expected a PEM public key ('-----BEGIN PUBLIC KEY-----...'), "
            f"got {describe(fields['public_key'])}",
        )
    if body.get("audience") is not None:
        at = child(path, "audience")
        raw = body["audience"]
        items = [raw] if isinstance(raw, str) else check.sequence(raw, at, what="audiences")
        fields["audience"] = tuple(
            _expand(check, check.string(item, child(at, i)), child(at, i), env)
            for i, item in enumerate(items)
        )
    if "leeway" in body:
        fields["leeway"] = check.seconds(
            body["leeway"], child(path, "leeway"), positive=False, hi=300
        )
    return build(check, JwtSpec, path, **fields)


def _expand(check: Checker, text: str, path: str, env: Mapping[str, str]) -> str:
    """Replace each `${env:NAME}` in `text`; an unset NAME fails at `path`."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = env.get(name)
        if found is None:
            check.fail(path, f"environment variable {name} is not set (used as ${{env:{name}}})")
        return found

    return _ENV_REF.sub(value, text)
