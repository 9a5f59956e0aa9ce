"""The admin API's deploy routes (behind the admin token, like every admin route):

    POST   /deploys[?promote=false]                    body: the app bundle (.tar.gz)
    GET    /functions/{id}/versions                    versions, oldest first
    GET    /aliases[?function=ID]                      aliases, by function and name
    PUT    /functions/{id}/aliases/{name}              {"version", "canary"?, "weight"?}
    DELETE /functions/{id}/aliases/{name}
    POST   /functions/{id}/aliases/{name}/rollback     back to the previous version, or to
                                                       {"version": N} when the body names one

Refusals say what was wrong: 413 for a bundle over the size limit, 400 naming the unsafe
member, or the manifest's file, key path and message, or why an alias cannot be set; 404
for a version or alias that does not exist; 422 when a new version's code fails to load.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lamina.control.deploys import Deployments, alias_view
from lamina.errors import BundleRejected, DeployError, LaminaError, ManifestError, StoreUnavailable

__all__ = ["deploy_routes"]

_Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    pass


def _status(exc: LaminaError) -> int:
    if isinstance(exc, BundleRejected):
        return 413 if exc.too_large else 400
    if isinstance(exc, DeployError):
        if exc.missing:
            return 404
        return 422 if exc.failed_to_load else 400
    if isinstance(exc, ManifestError):
        return 400
    if isinstance(exc, StoreUnavailable):
        return 503
    return 500


def _guarded(handler: _Handler) -> _Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except _BadRequest as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        except (BundleRejected, DeployError, ManifestError, StoreUnavailable) as exc:
            return JSONResponse({"message": str(exc)}, status_code=_status(exc))

    return endpoint


async def _bundle(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    too_large = BundleRejected(
        f"the bundle is larger than the limit of {limit / (1024 * 1024):g} MB "
        "(the platform's max_bundle_bytes)",
        too_large=True,
    )
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    if not size:
        raise _BadRequest("request body: expected the app bundle (.tar.gz), got nothing")
    return b"".join(chunks)


def _flag(request: Request, name: str, default: bool) -> bool:
    text = request.query_params.get(name)
    if text is None:
        return default
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise _BadRequest(f"query parameter {name}: expected true or false, got {text!r}")


def _int(body: dict[str, Any], key: str, required: bool = False) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _BadRequest(f"{key}: expected a version number, got {value!r}")
    return value


async def _object(request: Request) -> dict[str, Any]:
    """The request's JSON object body; an empty body is `{}`."""
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise _BadRequest(f"request body: not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("request body: expected a JSON object")
    return body


def deploy_routes(deploys: Deployments) -> list[BaseRoute]:
    """The routes above, over `deploys`."""

    async def post_deploy(request: Request) -> Response:
        data = await _bundle(request, deploys.max_bundle_bytes)
        outcome = await deploys.deploy(data, promote=_flag(request, "promote", True))
        return JSONResponse(outcome.to_json(), status_code=201)

    async def get_versions(request: Request) -> Response:
        return JSONResponse(await deploys.versions(request.path_params["fid"]))

    async def get_aliases(request: Request) -> Response:
        return JSONResponse(await deploys.aliases(request.query_params.get("function") or None))

    async def put_alias(request: Request) -> Response:
        body = await _object(request)
        weight = body.get("weight", 0)
        if not isinstance(weight, int) or isinstance(weight, bool):
            raise _BadRequest(f"weight: expected a whole percent 0..100, got {weight!r}")
        version = _int(body, "version", required=True)
        assert version is not None
        record = await deploys.set_alias(
            request.path_params["fid"],
            request.path_params["name"],
            version,
            _int(body, "canary"),
            weight,
        )
        return JSONResponse(alias_view(record))

    async def delete_alias(request: Request) -> Response:
        await deploys.delete_alias(request.path_params["fid"], request.path_params["name"])
        return Response(status_code=204)

    async def rollback(request: Request) -> Response:
        to = _int(await _object(request), "version")
        record = await deploys.rollback(request.path_params["fid"], request.path_params["name"], to)
        return JSONResponse(alias_view(record))

    alias = "/functions/{fid}/aliases/{name}"
    return [
        Route("/deploys", _guarded(post_deploy), methods=["POST"]),
        Route("/functions/{fid}/versions", _guarded(get_versions), methods=["GET"]),
        Route("/aliases", _guarded(get_aliases), methods=["GET"]),
        Route(alias, _guarded(put_alias), methods=["PUT"]),
        Route(alias, _guarded(delete_alias), methods=["DELETE"]),
        Route(f"{alias}/rollback", _guarded(rollback), methods=["POST"]),
    ]
