"""Admin API routes to look at service tables (read only):

    GET /tables                                           every table: key schema, item count
    GET /tables/{service}/{table}/items[?limit=&cursor=]  a page of items, in key order
    GET /tables/{service}/{table}/items/{key}[?sort=]     one item (404 when there is none)

A page is `{"items": [...], "cursor": "..." | null}`; pass `cursor` back for the next one. A key
in the URL is tried as text, then as the number it reads as ("7" finds the key 7 too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lamina.control.tables import ServiceNotFound, ServiceTables
from lamina.errors import LaminaError, StoreUnavailable, TableError, TableNotFound

__all__ = ["table_routes"]

_MAX_LIMIT = 1000

Endpoint = Callable[[Request], Awaitable[Response]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _guarded(handler: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except (TableNotFound, ServiceNotFound) as exc:
            return _error(404, str(exc))
        except TableError as exc:
            return _error(400, str(exc))
        except StoreUnavailable as exc:
            return _error(503, str(exc))
        except LaminaError as exc:
            return _error(400, str(exc))

    return endpoint


def table_routes(tables: ServiceTables) -> list[Route]:
    """The /tables routes over the platform's `ServiceTables`."""

    async def list_tables(request: Request) -> Response:
        return JSONResponse(await tables.describe())

    async def scan(request: Request) -> Response:
        raw = request.query_params.get("limit", "100")
        if not raw.isdecimal() or not 1 <= int(raw) <= _MAX_LIMIT:
            return _error(400, f"query parameter limit: expected 1..{_MAX_LIMIT}, got {raw!r}")
        page = await tables.scan(
            request.path_params["service"],
            request.path_params["table"],
            limit=int(raw),
            cursor=request.query_params.get("cursor") or None,
        )
        return JSONResponse(page.to_json())

    async def get_item(request: Request) -> Response:
        service, table = request.path_params["service"], request.path_params["table"]
        key = request.path_params["key"]
        sort = request.query_params.get("sort")
        item = await tables.get(service, table, key, sort)
        if item is None:
            shown = repr(key) if sort is None else repr((key, sort))
            return _error(404, f"table {table!r} of service {service!r}: no item with key {shown}")
        return JSONResponse(item)

    return [
        Route("/tables", _guarded(list_tables), methods=["GET"]),
        Route("/tables/{service}/{table}/items", _guarded(scan), methods=["GET"]),
        Route("/tables/{service}/{table}/items/{key:path}", _guarded(get_item), methods=["GET"]),
    ]
