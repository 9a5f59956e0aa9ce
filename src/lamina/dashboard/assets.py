"""Serving the built dashboard: `/` is `static/index.html`, `/ui/...` its scripts and styles.

These paths are the only ones the admin API opens without the token (`PUBLIC_PATHS`): they
hold code, never data. The page's content security policy allows only its own scripts and
calls to its own origin.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["PUBLIC_PATHS", "STATIC_DIR", "asset_routes"]

STATIC_DIR = Path(__file__).parent / "static"
# Exact paths, and prefixes ending in "/": GET and HEAD on them need no admin token.
PUBLIC_PATHS = ("/", "/ui/")

_HEADERS = {
    "cache-control": "no-cache",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def asset_routes(static_dir: Path = STATIC_DIR) -> list[BaseRoute]:
    """`GET /` (the page) and `/ui/...` (its assets) from `static_dir`."""
    index = static_dir / "index.html"

    async def page(request: Request) -> Response:
        if not index.is_file():
            return PlainTextResponse(
                f"the dashboard is not built: {index} is missing; run scripts/build-dashboard.sh",
                status_code=503,
            )
        return FileResponse(index, media_type="text/html", headers=_HEADERS)

    return [
        Route("/", page, methods=["GET", "HEAD"]),
        Mount("/ui", StaticFiles(directory=static_dir / "ui", check_dir=False), name="ui"),
    ]
