"""Authorizers of a SAM template's APIs that are more than a simple Lambda authorizer: HTTP API
JWT authorizers (`Auth.Authorizers.X.JwtConfiguration`), mapped to a route's own `JwtSpec`,
and REST API Lambda authorizers (`FunctionPayloadType` TOKEN or REQUEST), mapped to a
`FunctionAuthorizer` of kind `token` or `request`.

On AWS the keys come from the issuer: API Gateway reads `{issuer}/.well-known/openid-
configuration` and the key set its `jwks_uri` names. Lamina does the same by default, so
tokens from a real issuer (Cognito, Auth0, Okta, ...) work locally. For tokens made on the
developer's machine, the keys can be overridden per authorizer without editing the template:

    LAMINA_JWKS_<AuthorizerName>=http://127.0.0.1:9000/jwks.json   # a key set of your own
    LAMINA_JWKS_<AuthorizerName>=keys/public.pem                     # one RS256 public key
    LAMINA_JWKS=...                                                  # every JWT authorizer

A path is read relative to the current directory. The issuer and audience are still checked
against the template's `JwtConfiguration`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lamina.manifest._check import Checker, build, describe
from lamina.manifest._gateway import parse_scopes
from lamina.manifest._yamlpos import child
from lamina.manifest.models import FunctionAuthorizer, JwtSpec

__all__ = [
    "OVERRIDE",
    "JwtAuthorizer",
    "RestAuthorizer",
    "authorizer_function",
    "jwt_authorizer",
    "rest_authorizer",
]

OVERRIDE = "LAMINA_JWKS"  # + "_<AuthorizerName>" for one authorizer
_HEADER = "$request.header."
_JWT_KEYS = ("issuer", "audience")


@dataclass(frozen=True)
class JwtAuthorizer:
    """A runnable JWT authorizer: its spec, its default scopes, and the report's words."""

    spec: JwtSpec
    scopes: tuple[str, ...]  # the authorizer's AuthorizationScopes: routes' default
    verdict: Literal["run", "approximated"]  # approximated: its keys are overridden
    note: str


def jwt_authorizer(
    check: Checker, name: str, body: dict[str, Any], where: str, environ: Mapping[str, str]
) -> JwtAuthorizer | str:
    """The authorizer `name` (already resolved `body` at key path `where`), or why it cannot run."""
    config_at = child(where, "JwtConfiguration")
    config = {
        key[0].lower() + key[1:]: value
        for key, value in check.mapping(body["JwtConfiguration"], config_at).items()
    }
    unknown = sorted(k for k in config if k not in _JWT_KEYS)
    if unknown:
        check.fail(
            child(config_at, unknown[0]), "expected JwtConfiguration keys issuer and audience"
        )
    source = body.get("IdentitySource", "$request.header.Authorization")
    if not isinstance(source, str) or not source.startswith(_HEADER) or "," in source:
        return f"identity source {describe(source)} is not one request header"
    fields: dict[str, Any] = {"identity": source[len(_HEADER) :].lower()}
    issuer = config.get("issuer")
    if issuer is not None:
        fields["issuer"] = check.string(issuer, child(config_at, "issuer"), what="an issuer URL")
    audience = config.get("audience")
    if audience is not None:
        at = child(config_at, "audience")
        items = [audience] if isinstance(audience, str) else check.sequence(audience, at)
        fields["audience"] = tuple(
            check.string(item, child(at, i), what="an audience") for i, item in enumerate(items)
        )
    scopes: tuple[str, ...] = ()
    if "AuthorizationScopes" in body:
        scopes = parse_scopes(
            check, body["AuthorizationScopes"], child(where, "AuthorizationScopes")
        )
    env_name = f"{OVERRIDE}_{name}"
    override_name = env_name if env_name in environ else OVERRIDE if OVERRIDE in environ else None
    if override_name is not None:
        keys, shown = _override(check, override_name, environ[override_name], where)
        fields.update(keys)
        verdict: Literal["run", "approximated"] = "approximated"
        source_text = f"keys from {override_name}={shown} instead of the issuer's"
    elif "issuer" in fields:
        verdict = "run"
        source_text = "keys from the issuer's OIDC discovery"
    else:
        return "a JWT authorizer needs JwtConfiguration.issuer to find its keys"
    spec = build(check, JwtSpec, where, **fields)
    checks = [f"iss {spec.issuer}"] if spec.issuer else []
    if spec.audience:
        checks.append(f"aud {', '.join(spec.audience)}")
    if scopes:
        checks.append(f"scopes {' '.join(scopes)}")
    note = f"JWT authorizer: {source_text}; token in header {spec.identity}" + (
        f"; checks {'; '.join(checks)}" if checks else ""
    )
    return JwtAuthorizer(spec, scopes, verdict, note)


def _override(check: Checker, variable: str, value: str, where: str) -> tuple[dict[str, str], str]:
    """`jwks_uri` or `public_key` fields from an override variable, and how to show it."""
    if value.startswith(("http://", "https://")):
        return {"jwks_uri": value}, value
    try:
        text = Path(value).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        check.fail(where, f"{variable}: cannot read the public key file {value!r} ({exc})")
    if "BEGIN PUBLIC KEY" not in text:
        check.fail(
            where,
            f"{variable}: expected a JWKS URL (http:// or https://) or a PEM public key file, "
            f"but {value!r} holds no '-----BEGIN PUBLIC KEY-----'",
        )
    return {"public_key": text}, value


@dataclass(frozen=True)
class RestAuthorizer:
    """A runnable REST API Lambda authorizer and the report's words."""

    spec: FunctionAuthorizer
    verdict: Literal["run", "approximated"]
    note: str


def authorizer_function(check: Checker, spec: dict[str, Any], where: str) -> str:
    """The function id in an authorizer's `FunctionArn` (`!GetAtt Fn.Arn`, resolved)."""
    arn = spec["FunctionArn"]
    if not (isinstance(arn, str) and ":function:" in arn):
        check.fail(
            child(where, "FunctionArn"),
            f"expected a function ARN (!GetAtt Fn.Arn), got {describe(arn)}",
        )
    return arn.rsplit(":function:", 1)[1]


def rest_authorizer(check: Checker, spec: dict[str, Any], where: str) -> RestAuthorizer | str:
    """A REST API authorizer with `FunctionArn`, or why it cannot run."""
    kind = str(spec.get("FunctionPayloadType", "TOKEN")).upper()
    if kind not in ("TOKEN", "REQUEST"):
        check.fail(child(where, "FunctionPayloadType"), f"expected TOKEN or REQUEST, got {kind!r}")
    identity_at = child(where, "Identity")
    identity = check.mapping(spec.get("Identity"), identity_at)
    other = sorted(
        k
        for k in identity
        if k not in ("Header", "Headers", "ValidationExpression", "ReauthorizeEvery")
    )
    if other:
        return f"identity sources {', '.join(other)} are not supported (headers only)"
    ttl = check.seconds(
        _number(identity.get("ReauthorizeEvery", 300)),
        child(identity_at, "ReauthorizeEvery"),
        positive=False,
        hi=3600,
    )
    fields: dict[str, Any] = {
        "function": authorizer_function(check, spec, where),
        "kind": kind.lower(),
        "ttl": ttl,
    }
    notes = []
    if kind == "TOKEN":
        header = check.string(identity.get("Header", "Authorization"), child(identity_at, "Header"))
        fields["identity"] = (header.lower(),)
        if "ValidationExpression" in identity:
            fields["validation"] = check.string(
                identity["ValidationExpression"], child(identity_at, "ValidationExpression")
            )
            notes.append(f"tokens must match {fields['validation']}")
    else:
        headers = check.sequence(identity.get("Headers", []), child(identity_at, "Headers"))
        fields["identity"] = tuple(str(h).lower() for h in headers)
        if not headers and ttl:
            fields["ttl"] = 0.0
            notes.append("answers are not cached: no identity header to cache them by")
    authorizer = build(check, FunctionAuthorizer, where, **fields)
    said = "token in header" if kind == "TOKEN" else "identity headers"
    shown = ", ".join(authorizer.identity) or "none"
    note = (
        f"REST API {kind} authorizer {authorizer.function}: its IAM policy answer is evaluated "
        f"for execute-api:Invoke on the method ARN; {said} {shown}; cached {authorizer.ttl:g} s"
    )
    if notes:
        note += "; " + "; ".join(notes)
    verdict: Literal["run", "approximated"] = "approximated" if fields["ttl"] != ttl else "run"
    return RestAuthorizer(authorizer, verdict, note)


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value
