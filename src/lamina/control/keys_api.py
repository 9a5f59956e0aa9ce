"""Admin API routes for the gateway's API keys (`auth: api_key` routes):

POST   /keys        {"name", "rate"?, "burst"?, "quota_per_day"?} -> 201 with the key, once
GET    /keys        every key (never the key itself), with today's usage
DELETE /keys/{id}   revoke: the key is refused from then on (404 if unknown or revoked)
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lamina.errors import StoreUnavailable
from lamina.gateway.apikeys import ApiKeys, KeyUse
from lamina.store.types import ApiKey

__all__ = ["key_routes", "key_view"]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def key_view(key: ApiKey, used_today: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": key.id,
        "name": key.name,
        "rate": key.rate,
        "burst": key.burst,
        "quota_per_day": key.quota_per_day,
        "created_ms": key.created_ms,
        "revoked_ms": key.revoked_ms,
        "revoked": key.revoked_ms is not None,
    }
    if used_today is not None:
        view["used_today"] = used_today
    return view


class _Bad(Exception):
    pass


def _number(body: dict[str, Any], name: str, *, integer: bool) -> Any:
    value = body.get(name)
    if value is None:
        return None
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        what = "an integer" if integer else "a number"
        raise _Bad(f"{name}: expected {what} > 0, got {value!r}")
    return value


def key_routes(keys: ApiKeys) -> list[Route]:
    async def create(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise _Bad("request body: expected a JSON object")
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise _Bad(f"name: expected a non-empty string, got {name!r}")
            rate = _number(body, "rate", integer=False)
            burst = _number(body, "burst", integer=True)
            quota = _number(body, "quota_per_day", integer=True)
            if burst is not None and rate is None:
                raise _Bad("burst needs rate (requests per second)")
        except orjson.JSONDecodeError as exc:
            return _error(400, f"request body: not valid JSON: {exc}")
        except _Bad as exc:
            return _error(400, str(exc))
        try:
            key, raw = await keys.create(
                name.strip(),
                rate=None if rate is None else float(rate),
                burst=burst,
                quota_per_day=quota,
            )
        except StoreUnavailable as exc:
            return _error(503, str(exc))
        return JSONResponse({**key_view(key), "key": raw}, status_code=201)

    async def listing(request: Request) -> Response:
        uses: list[KeyUse] = await keys.list()
        return JSONResponse([key_view(u.key, u.used_today) for u in uses])

    async def revoke(request: Request) -> Response:
        key_id = request.path_params["id"]
        if not await keys.revoke(key_id):
            return _error(404, f"no valid API key {key_id!r} (unknown, or already revoked)")
        return JSONResponse({"id": key_id, "revoked": True})

    return [
        Route("/keys", create, methods=["POST"]),
        Route("/keys", listing, methods=["GET"]),
        Route("/keys/{id}", revoke, methods=["DELETE"]),
    ]
