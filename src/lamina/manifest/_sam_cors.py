"""CORS settings of SAM APIs, mapped to the gateway's one CORS policy (`gateway.cors`).

- HTTP APIs: `CorsConfiguration` (on the API or in `Globals.HttpApi`) is `true` (any origin)
  or `{AllowOrigins, AllowMethods, AllowHeaders, ExposeHeaders, MaxAge, AllowCredentials}`
  with lists and numbers, as API Gateway takes them.
- REST APIs: `Cors` (on the API or in `Globals.Api`) is an origin in single quotes
  (`"'https://app.example'"`) or `{AllowOrigin, AllowMethods, AllowHeaders, MaxAge,
  AllowCredentials}`, each a quoted header value (`"'GET,POST'"`, `"'600'"`), as SAM writes
  them into the preflight's mock integration.

Lamina's gateway has one CORS policy for every route; the caller decides which API's settings
it takes and reports the others.
"""

from __future__ import annotations

from typing import Any

from lamina.manifest._check import Checker, build, describe
from lamina.manifest._gateway import _headers, _methods, _origins
from lamina.manifest._yamlpos import child
from lamina.manifest.models import CorsSpec

__all__ = ["http_api_cors", "rest_api_cors"]

HTTP_KEYS = (
    "AllowOrigins",
    "AllowMethods",
    "AllowHeaders",
    "ExposeHeaders",
    "MaxAge",
    "AllowCredentials",
)
REST_KEYS = ("AllowOrigin", "AllowMethods", "AllowHeaders", "MaxAge", "AllowCredentials")


def http_api_cors(check: Checker, value: Any, at: str) -> CorsSpec:
    """An HTTP API's `CorsConfiguration`."""
    if value is True or value in ("true", "True"):
        return CorsSpec(origins=("*",), methods=("*",), headers=("*",))
    body = check.mapping(
        value, at, allowed=HTTP_KEYS, what="true or a mapping with AllowOrigins, AllowMethods, ..."
    )
    if "AllowOrigins" not in body:
        check.fail(at, "CorsConfiguration needs AllowOrigins (a list of origins, or ['*'])")
    fields: dict[str, Any] = {
        "origins": _origins(check, body["AllowOrigins"], child(at, "AllowOrigins"))
    }
    if "AllowMethods" in body:
        where = child(at, "AllowMethods")
        methods = body["AllowMethods"]
        fields["methods"] = _methods(
            check, [methods] if isinstance(methods, str) else methods, where
        )
    if "AllowHeaders" in body:
        fields["headers"] = _headers(check, body["AllowHeaders"], child(at, "AllowHeaders"))
    if "ExposeHeaders" in body:
        fields["expose_headers"] = _headers(
            check, body["ExposeHeaders"], child(at, "ExposeHeaders")
        )
    if "MaxAge" in body:
        fields["max_age"] = check.integer(_int(body["MaxAge"]), child(at, "MaxAge"), 0, 86400, "s")
    if "AllowCredentials" in body:
        fields["credentials"] = _flag(
            check, body["AllowCredentials"], child(at, "AllowCredentials")
        )
    return _spec(check, at, fields, "AllowCredentials")


def rest_api_cors(check: Checker, value: Any, at: str) -> CorsSpec:
    """A REST API's `Cors`: values are quoted header values, as SAM takes them."""
    if isinstance(value, str):
        value = {"AllowOrigin": value}
    body = check.mapping(
        value, at, allowed=REST_KEYS, what="an origin like \"'*'\" or a mapping with AllowOrigin"
    )
    if "AllowOrigin" not in body:
        check.fail(at, "Cors needs AllowOrigin (an origin in single quotes, like \"'*'\")")
    where = child(at, "AllowOrigin")
    fields: dict[str, Any] = {
        "origins": _origins(check, _unquoted(check, body["AllowOrigin"], where), where)
    }
    if "AllowMethods" in body:
        where = child(at, "AllowMethods")
        fields["methods"] = _methods(check, _unquoted(check, body["AllowMethods"], where), where)
    if "AllowHeaders" in body:
        where = child(at, "AllowHeaders")
        fields["headers"] = _headers(check, _unquoted(check, body["AllowHeaders"], where), where)
    if "MaxAge" in body:
        where = child(at, "MaxAge")
        text = _unquoted(check, body["MaxAge"], where)
        fields["max_age"] = check.integer(_int(text[0] if text else ""), where, 0, 86400, "s")
    if "AllowCredentials" in body:
        fields["credentials"] = _flag(
            check, body["AllowCredentials"], child(at, "AllowCredentials")
        )
    return _spec(check, at, fields, "AllowCredentials")


def _spec(check: Checker, at: str, fields: dict[str, Any], credentials_key: str) -> CorsSpec:
    if fields.get("credentials") and "*" in fields["origins"]:
        check.fail(
            child(at, credentials_key),
            "AllowCredentials: true needs explicit origins; browsers refuse it with '*'",
        )
    return build(check, CorsSpec, at, **fields)


def _unquoted(check: Checker, value: Any, at: str) -> list[str]:
    """`"'GET,POST'"` -> `["GET", "POST"]`: REST API CORS values are header values in quotes."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"'{value}'"
    if not (isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'"):
        check.fail(
            at,
            "expected a value in single quotes, like \"'*'\" or \"'GET,POST'\", got "
            f"{describe(value)}",
        )
    return [part.strip() for part in value[1:-1].split(",") if part.strip()]


def _int(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _flag(check: Checker, value: Any, at: str) -> bool:
    if value in (True, "true", "True"):
        return True
    if value in (False, "false", "False"):
        return False
    check.fail(at, f"expected true or false, got {describe(value)}")
