"""`gateway:` and the http trigger's auth, scopes and rate_limit: what loads, and the errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lamina.errors import ManifestError
from lamina.manifest import FunctionAuthorizer, RateLimitSpec, parse_app

APP = """\
app: shop
gateway:
  cors: {{origins: ["https://app.example"], methods: [GET, post], headers: [Authorization], max_age: 600}}
  rate_limit: {{rate: 100, burst: 200}}
  auth:
    jwt: {{secret: "${{env:JWT_SECRET}}", issuer: "https://issuer.example", audience: "shop"}}
services:
  users:
    functions:
      signup:
        handler: handlers.signup
        events:
          - {event}
"""  # noqa: E501
ROUTE = 'http: {route: "POST /orders", auth: jwt, scopes: ["orders:write"], rate_limit: {rate: 5, burst: 5}}'  # noqa: E501


def load(
    root: Path, event: str = ROUTE, env: dict[str, str] | None = None, text: str = APP
) -> object:
    environ = {"JWT_SECRET": "from-the-env"} if env is None else env
    return parse_app(textwrap.dedent(text.format(event=event)), root=root, environ=environ)


def error(
    root: Path, event: str = ROUTE, env: dict[str, str] | None = None, text: str = APP
) -> str:
    with pytest.raises(ManifestError) as info:
        load(root, event, env, text)
    return str(info.value)


def test_the_issue_example_loads(root: Path) -> None:
    app = load(root)
    gateway = app.gateway  # type: ignore[attr-defined]
    assert gateway.auth.jwt.secret == "from-the-env"
    assert gateway.auth.jwt.audience == ("shop",)
    assert gateway.cors.methods == ("GET", "POST")
    assert gateway.cors.headers == ("authorization",)
    assert gateway.rate_limit == RateLimitSpec(rate=100, burst=200)
    trigger = app.functions()["users.signup"].events[0]  # type: ignore[attr-defined]
    assert (trigger.auth, trigger.scopes) == ("jwt", ("orders:write",))
    assert trigger.rate_limit == RateLimitSpec(rate=5, burst=5)


def test_api_key_and_function_authorizers_load(root: Path) -> None:
    app = load(root, 'http: {route: "GET /a", auth: {function: users.signup, ttl: 60}}')
    trigger = app.functions()["users.signup"].events[0]  # type: ignore[attr-defined]
    assert trigger.auth == FunctionAuthorizer(function="users.signup", ttl=60)
    app = load(root, 'http: {route: "GET /a", auth: api_key}')
    assert app.functions()["users.signup"].events[0].auth == "api_key"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event", "env", "expected"),
    [
        pytest.param(ROUTE, {}, "lamina.yaml:6: gateway.auth.jwt.secret: environment variable "
                     "JWT_SECRET is not set (used as ${env:JWT_SECRET})", id="an unset variable"),
        pytest.param('http: {route: "GET /a", auth: jtw}', None,
                     "events[0].http.auth: unknown authorizer 'jtw'; did you mean 'jwt'?",
                     id="a misspelt authorizer"),
        pytest.param('http: {route: "GET /a", auth: {function: users.sigup}}', None,
                     "auth.function: authorizer function 'users.sigup' is not defined in this "
                     "app; did you mean 'users.signup'?", id="an unknown authorizer function"),
        pytest.param('http: {route: "GET /a", auth: {function: signup}}', None,
                     "expected a function id 'service.function', got 'signup'",
                     id="an authorizer function without its service"),
        pytest.param('http: {route: "GET /a", scopes: [x]}', None,
                     "scopes: scopes need 'auth: jwt' on the same route", id="scopes without jwt"),
        pytest.param('http: {route: "GET /a", rate_limit: {rate: 0, burst: 1}}', None,
                     "rate_limit.rate: expected requests per second > 0, got 0", id="a zero rate"),
        pytest.param('http: {route: "GET /a", rate_limit: {rate: 1}}', None,
                     "rate_limit: missing required key 'burst'", id="a rate limit without burst"),
        pytest.param('http: {route: "GET /a", rate_limit: {rate: 1, brust: 2}}', None,
                     "unknown key 'brust'; did you mean 'burst'?", id="a misspelt burst"),
    ],
)  # fmt: skip
def test_route_errors_name_the_place(
    root: Path, event: str, env: dict[str, str] | None, expected: str
) -> None:
    assert expected in error(root, event, env)


def test_auth_jwt_needs_gateway_jwt(root: Path) -> None:
    text = "\n".join(
        line for line in APP.splitlines() if not line.startswith(("  auth", "    jwt"))
    )
    message = error(root, 'http: {route: "GET /a", auth: jwt}', text=text)
    assert "events[0].http.auth: auth: jwt needs 'gateway.auth.jwt'" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param('origins: ["https://app.example"]', "origins: [app.example]",
                     "gateway.cors.origins[0]: expected an origin like 'https://app.example'",
                     id="an origin without a scheme"),
        pytest.param("methods: [GET, post]", "methods: [GET, FETCH]",
                     "gateway.cors.methods[1]: expected one of GET", id="an unknown method"),
        pytest.param("max_age: 600", "max_age: -1",
                     "gateway.cors.max_age: expected an integer 0-86400", id="a negative max_age"),
        pytest.param("burst: 200", "burst: 0",
                     "gateway.rate_limit.burst: expected an integer 1-1000000", id="a zero burst"),
        pytest.param('secret: "${{env:JWT_SECRET}}", ', "", "gateway.auth.jwt: expected exactly "
                     "one of 'secret' (HS256) or 'public_key' (RS256)", id="no key"),
        pytest.param('secret: "${{env:JWT_SECRET}}"', 'public_key: "abc"',
                     "gateway.auth.jwt.public_key: expected a PEM public key",
                     id="a public key that is not PEM"),
        pytest.param("rate_limit:", "rate_limits:",
                     "unknown key 'rate_limits'; did you mean 'rate_limit'?", id="a misspelt key"),
    ],
)  # fmt: skip
def test_gateway_errors_name_the_place(root: Path, old: str, new: str, expected: str) -> None:
    assert expected in error(root, text=APP.replace(old, new))
