"""Helpers for the gateway's pure-core tests: build HttpRequests and matches tersely."""

from __future__ import annotations

from typing import Any

import pytest

from lamina.gateway.request import HttpRequest
from lamina.gateway.routes import RouteMatch
from lamina.manifest.routekey import RouteKey


def _make_request(
    method: str = "GET",
    path: str = "/",
    *,
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    raw_path: str | None = None,
) -> HttpRequest:
    """An HttpRequest as the ASGI layer would build it (header names lower-case)."""
    return HttpRequest(
        method=method,
        path=path,
        raw_path=raw_path if raw_path is not None else path,
        query_string=query,
        headers=tuple((k.lower(), v) for k, v in (headers or [("host", "api.example.com")])),
        body=body,
        source_ip="203.0.113.7",
        protocol="HTTP/1.1",
    )


def _make_match(route: str, **params: str) -> RouteMatch[Any]:
    return RouteMatch(RouteKey.parse(route), "fn", dict(params))


@pytest.fixture
def make_request() -> Any:
    """`make_request(method, path, query=, headers=, body=)` -> HttpRequest."""
    return _make_request


@pytest.fixture
def make_match() -> Any:
    """`make_match("GET /users/{id}", id="7")` -> RouteMatch with target "fn"."""
    return _make_match
