"""The admin API: a small authenticated HTTP API beside the gateway (`GET /status`, ...)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BearerAuth", "admin_app"]


class BearerAuth:
    """ASGI middleware: every request needs `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                why = "missing" if not given else "wrong"
                message = f"Unauthorized: {why} bearer token; see APP_DIR/.lamina/admin-token"
                response = JSONResponse(
                    {"message": message},
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def admin_app(token: str, status: Callable[[], dict[str, Any]]) -> ASGIApp:
    async def get_status(request: Request) -> Response:
        return JSONResponse(status())

    app = Starlette(routes=[Route("/status", get_status, methods=["GET"])])
    return BearerAuth(app, token)
