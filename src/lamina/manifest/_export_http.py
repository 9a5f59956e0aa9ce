"""The HTTP API of an exported SAM template: one `AWS::Serverless::HttpApi` with every route
as an `HttpApi` event, the JWT authorizer (issuer and audience as template Parameters, since
API Gateway checks tokens against the keys the issuer publishes), Lambda authorizers, IAM auth
in place of API keys, CORS and throttling. Part of `lamina.manifest.export`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from lamina.manifest._cfn import GetAtt, Ref
from lamina.manifest._yamlpos import child
from lamina.manifest.models import (
    AppSpec,
    FunctionAuthorizer,
    FunctionSpec,
    HttpTrigger,
    JwtSpec,
)

__all__ = ["API", "JWT", "ExportVerdict", "HttpApiExport", "Note", "whole_seconds"]

ExportVerdict = Literal["translated", "approximated", "dropped"]
Note = Callable[[str, ExportVerdict, str], None]  # records one report entry
API = "HttpApi"  # logical id of the HTTP API
JWT = "LaminaJwt"  # the JWT authorizer's name on the HTTP API
HTTP_API_TIMEOUT_S = 30  # API Gateway HTTP APIs end an integration after 30 s
_UNRESOLVED = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}")


def whole_seconds(value: float) -> int:
    """Whole seconds, rounded up: CloudFormation takes integers."""
    return math.ceil(value)


class HttpApiExport:
    """Collects the API's authorizers while routes are exported, then builds the API."""

    def __init__(
        self,
        app: AppSpec,
        functions: Mapping[str, str],
        logical: Callable[..., str],
        note: Note,
    ) -> None:
        self.app = app
        self.functions = functions  # function id -> logical id
        self.logical = logical  # a unique logical id from name parts
        self.note = note
        self.authorizers: dict[str, dict[str, Any]] = {}  # by authorizer name
        self.lambda_authorizers: dict[FunctionAuthorizer, str] = {}
        self.own_jwt: dict[JwtSpec, str] = {}  # routes' own JWT authorizers -> names
        self.iam_auth = False  # some route needs IAM authorization (it had auth: api_key)
        self.jwt_used = False

    def route(self, f: FunctionSpec, event: HttpTrigger, at: str) -> dict[str, Any]:
        """The `HttpApi` event of one route of `f` (at key path `at`); notes its authorizer."""
        props: dict[str, Any] = {"ApiId": Ref(API)}
        if not event.route.is_default:
            props["Path"] = event.route.path
            props["Method"] = event.route.method
        if event.format == "1.0":
            props["PayloadFormatVersion"] = "1.0"
        guard = ""
        if event.auth == "jwt":
            self.jwt_used = True
            props["Auth"] = {"Authorizer": JWT}
            if event.scopes:
                props["Auth"]["AuthorizationScopes"] = list(event.scopes)
            guard = " with the JWT authorizer"
        elif event.auth == "api_key":
            self.iam_auth = True
            props["Auth"] = {"Authorizer": "AWS_IAM"}
            guard = " with IAM authorization"
        elif isinstance(event.auth, FunctionAuthorizer):
            name = self._lambda_authorizer(event.auth)
            props["Auth"] = {"Authorizer": name}
            guard = f" with the Lambda authorizer {name}"
        elif isinstance(event.auth, JwtSpec):  # a route's own JWT authorizer (from SAM)
            name = self._own_jwt(event.auth, child(at, "auth"))
            props["Auth"] = {"Authorizer": name}
            if event.scopes:
                props["Auth"]["AuthorizationScopes"] = list(event.scopes)
            guard = f" with the JWT authorizer {name}"
        payload = " (payload 1.0)" if event.format == "1.0" else ""
        self.note(at, "translated", f"HttpApi route {event.route}{payload}{guard}")
        if event.auth == "api_key":
            self.note(
                child(at, "auth"),
                "approximated",
                "HTTP APIs have no API keys: the route requires IAM (SigV4) authorization",
            )
        if event.rate_limit is not None:
            props["RouteSettings"] = _throttle(event.rate_limit.rate, event.rate_limit.burst)
            self.note(
                child(at, "rate_limit"),
                "approximated",
                "route throttling (API Gateway answers 429 past the rate, over all callers)",
            )
        if f.timeout > HTTP_API_TIMEOUT_S:
            self.note(
                at,
                "approximated",
                f"the HTTP API ends a request after {HTTP_API_TIMEOUT_S} s "
                f"(the function may run {f.timeout:g} s)",
            )
        return {"Type": "HttpApi", "Properties": props}

    def _own_jwt(self, spec: JwtSpec, at: str) -> str:
        """The name of a JWT authorizer checking as `spec` says, added on first use."""
        if spec not in self.own_jwt:
            name = self.own_jwt[spec] = f"Jwt{len(self.own_jwt) + 1}"
            config: dict[str, Any] = {"issuer": spec.issuer, "audience": list(spec.audience)}
            self.authorizers[name] = {
                "IdentitySource": f"$request.header.{spec.identity}",
                "JwtConfiguration": {k: v for k, v in config.items() if v},
            }
            if not spec.uses_jwks or spec.jwks_uri is not None:
                self.note(
                    at,
                    "approximated",
                    f"JWT authorizer {name}: API Gateway fetches the issuer's keys by OIDC "
                    "discovery, not the local key override",
                )
        return self.own_jwt[spec]

    def _lambda_authorizer(self, auth: FunctionAuthorizer) -> str:
        if auth not in self.lambda_authorizers:
            name = self.logical(self.functions[auth.function], "Authorizer")
            self.lambda_authorizers[auth] = name
            self.authorizers[name] = {
                "FunctionArn": GetAtt(f"{self.functions[auth.function]}.Arn"),
                "Identity": {
                    "Headers": list(auth.identity),
                    "ReauthorizeEvery": whole_seconds(auth.ttl),
                },
                "AuthorizerPayloadFormatVersion": "2.0",
                "EnableSimpleResponses": True,
                "EnableFunctionDefaultPermissions": True,
            }
            if auth.kind != "http":  # a REST API authorizer (from SAM): IAM policy answers
                self.authorizers[name]["AuthorizerPayloadFormatVersion"] = "1.0"
                del self.authorizers[name]["EnableSimpleResponses"]
                self.note(
                    f"authorizers.{name}",
                    "approximated",
                    f"a REST API {auth.kind.upper()} authorizer becomes an HTTP API Lambda "
                    "authorizer with payload 1.0: it gets a REQUEST event and answers an IAM "
                    "policy",
                )
        return self.lambda_authorizers[auth]

    def parameters(self) -> dict[str, Any]:
        """`JwtIssuer` and `JwtAudience`, and the JWT authorizer, if a route uses auth: jwt.
        Called once every route is exported."""
        jwt = self.app.gateway.auth.jwt
        if jwt is None:
            return {}
        at = "gateway.auth.jwt"
        if not self.jwt_used:
            self.note(at, "dropped", "no route uses auth: jwt")
            return {}
        self.authorizers[JWT] = {
            "IdentitySource": "$request.header.Authorization",
            "JwtConfiguration": {"issuer": Ref("JwtIssuer"), "audience": Ref("JwtAudience")},
        }
        issuer: dict[str, Any] = {
            "Type": "String",
            "Description": "The JWT issuer (iss); API Gateway fetches its keys by OIDC discovery",
        }
        if jwt.issuer and not _UNRESOLVED.search(jwt.issuer):
            issuer["Default"] = jwt.issuer
        audience: dict[str, Any] = {
            "Type": "CommaDelimitedList",
            "Description": "Audiences (aud) a token may name",
        }
        if jwt.audience and not any(_UNRESOLVED.search(a) for a in jwt.audience):
            audience["Default"] = ",".join(jwt.audience)
        unset = [
            n for n, p in (("JwtIssuer", issuer), ("JwtAudience", audience)) if "Default" not in p
        ]
        algorithm = "an HS256 secret" if jwt.secret is not None else "a public key"
        self.note(
            at,
            "approximated",
            f"JWT authorizer {JWT}: API Gateway checks RS256 tokens against the keys the issuer "
            f"publishes (OIDC discovery), not {algorithm}",
        )
        if unset:
            names = " and ".join(unset)
            self.note(at, "approximated", f"no default for {names}: give it at deploy time")
        if jwt.leeway:
            self.note(child(at, "leeway"), "dropped", "API Gateway allows no clock skew setting")
        return {"JwtIssuer": issuer, "JwtAudience": audience}

    def resource(self) -> dict[str, Any]:
        """The `AWS::Serverless::HttpApi` resource: authorizers, CORS, default throttling."""
        gateway = self.app.gateway
        props: dict[str, Any] = {}
        if self.authorizers or self.iam_auth:
            auth: dict[str, Any] = {}
            if self.authorizers:
                auth["Authorizers"] = dict(sorted(self.authorizers.items()))
            if self.iam_auth:
                auth["EnableIamAuthorizer"] = True
            props["Auth"] = auth
        if gateway.cors is not None:
            cors = gateway.cors
            config: dict[str, Any] = {
                "AllowOrigins": list(cors.origins),
                "AllowMethods": list(cors.methods),
            }
            if cors.headers:
                config["AllowHeaders"] = list(cors.headers)
            if cors.expose_headers:
                config["ExposeHeaders"] = list(cors.expose_headers)
            if cors.max_age:
                config["MaxAge"] = cors.max_age
            if cors.credentials:
                config["AllowCredentials"] = True
            props["CorsConfiguration"] = config
            self.note("gateway.cors", "translated", "CorsConfiguration of the HTTP API")
        if gateway.rate_limit is not None:
            props["DefaultRouteSettings"] = _throttle(
                gateway.rate_limit.rate, gateway.rate_limit.burst
            )
            self.note(
                "gateway.rate_limit",
                "approximated",
                "DefaultRouteSettings throttling (API Gateway answers 429 past the rate, over "
                "all callers; account limits apply too)",
            )
        resource: dict[str, Any] = {"Type": "AWS::Serverless::HttpApi"}
        if props:
            resource["Properties"] = props
        return resource


def _throttle(rate: float, burst: int) -> dict[str, Any]:
    return {"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst}
