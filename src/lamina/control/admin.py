"""The admin API: a small authenticated HTTP API beside the gateway.

    GET    /status                       every function and its instances
    GET    /metrics                      Prometheus text exposition (control/metrics.py)
    GET    /dlq[?source=&limit=&offset=] dead letters, oldest first (header X-Total-Count)
    GET    /dlq/{source}/{id}            one dead letter
    POST   /dlq/redrive                  {"source"?: ..., "ids"?: [...]}: back to the source queue
    DELETE /dlq?source=SOURCE            purge one dead-letter queue
    POST   /queues/{name}/messages       {"body", "attributes"?, "delay_seconds"?}
    POST   /topics/{name}/messages       {"message", "subject"?, "attributes"?}
    GET    /tables[/{service}/{table}/items[/{key}]]  service tables (control/tables_api.py)

The producer routes keep the request's `traceparent` header (what `lamina.send` and
`lamina.publish` send) with the message, so its consumers join the sender's trace.
The platform adds the deploy routes (control/deploy_api.py: POST /deploys, versions, aliases,
rollback) and the dashboard's routes (control/dashboard_api.py: GET /stats, /map, /queues,
and the page at `/`, which alone needs no token).

A dead letter's `source` is the queue it died in: `async:<function_id>`, `queue:<name>` or
`sub:<topic>:<function_id>`; its dead-letter queue is `dlq:<source>`. Every call needs the admin
token; the function token (given to function code) opens the two producer routes only.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from lamina.clock import Clock, SystemClock
from lamina.control.metrics import MetricsScrape, metrics_route
from lamina.control.observe import telemetry_routes
from lamina.control.tables import ServiceTables
from lamina.control.tables_api import table_routes
from lamina.errors import DuplicateMessage, LaminaError, ShuttingDown, StoreUnavailable
from lamina.events.shapes import iso_ms
from lamina.store.types import Message, NewMessage, Store

__all__ = [
    "FUNCTION_PATHS",
    "BearerAuth",
    "PublishMessage",
    "SendMessage",
    "admin_app",
    "dead_letter_view",
]

FUNCTION_PATHS = ("/queues/", "/topics/")  # the only routes the function token opens
_DLQ = "dlq:"
_MAX_LIMIT = 1000
_REDRIVE_PAGE = 100

# Queues.send(queue, body, attributes=, delay_s=, traceparent=) and Topics.publish(topic, message,
# subject=, attributes=, traceparent=); each returns the new message's id.
SendMessage = Callable[..., Awaitable[Any]]
PublishMessage = Callable[..., Awaitable[Any]]


class BearerAuth:
    """ASGI middleware: every request needs `Authorization: Bearer <token>`; a second,
    narrower `function_token` is accepted only on paths starting with `function_paths`.
    GET and HEAD of `public_paths` (exact paths, or prefixes ending in "/") need no token:
    the dashboard's page and assets, which hold no data."""

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        *,
        function_token: str | None = None,
        function_paths: tuple[str, ...] = FUNCTION_PATHS,
        public_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.function_expected = f"Bearer {function_token}".encode() if function_token else None
        self.function_paths = function_paths
        self.public_exact = frozenset(p for p in public_paths if not p.endswith("/") or p == "/")
        self.public_prefixes = tuple(p for p in public_paths if p.endswith("/") and p != "/")

    def _public(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return scope["method"] in ("GET", "HEAD") and (
            path in self.public_exact or path.startswith(self.public_prefixes)
        )

    def _allowed(self, given: bytes, path: str) -> bool:
        if hmac.compare_digest(given, self.expected):
            return True
        return (
            self.function_expected is not None
            and hmac.compare_digest(given, self.function_expected)
            and path.startswith(self.function_paths)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._public(scope):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not self._allowed(given, scope["path"]):
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


def dead_letter_view(message: Message) -> dict[str, Any]:
    """A dead letter as the API shows it: payload decoded, error and attempt times flattened."""
    error = dict(message.last_error or {})
    # A dead letter is moved at the end of its last attempt and is visible from then on.
    last_ms = message.visible_ms
    first_ms = message.first_received_ms
    return {
        "source": message.queue.removeprefix(_DLQ),
        "id": message.id,
        "payload": _decoded(message.body),
        "attributes": dict(message.attributes),
        "error_type": error.get("errorType"),
        "error_message": error.get("errorMessage"),
        "attempts": message.receive_count,
        "created_ms": message.created_ms,
        "first_attempt_ms": first_ms,
        "last_attempt_ms": last_ms,
        "first_attempt": iso_ms(first_ms) if first_ms is not None else None,
        "last_attempt": iso_ms(last_ms),
    }


def _decoded(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _status_of(exc: LaminaError) -> int:
    """HTTP status for an error a producer raised: unknown names are 404, and so on."""
    name = type(exc).__name__
    if "NotFound" in name or "Unknown" in name:
        return 404
    if "TooLarge" in name:
        return 413
    if isinstance(exc, ShuttingDown | StoreUnavailable):
        return 503
    return 400


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _BadRequest(f"request body: not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("request body: expected a JSON object")
    return body


class _BadRequest(Exception):
    pass


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdecimal() or not low <= int(text) <= high:
        raise _BadRequest(f"query parameter {name}: expected {low}..{high}, got {text!r}")
    return int(text)


class _DeadLetters:
    """The /dlq routes over the store."""

    def __init__(
        self, store: Store, known: Iterable[str] | Callable[[], Iterable[str]], clock: Clock
    ) -> None:
        self.store = store
        self._known = known  # dlq:<source> names, or a function giving the current ones
        self.clock = clock

    @property
    def known(self) -> tuple[str, ...]:
        known = self._known() if callable(self._known) else self._known
        return tuple(q for q in known if q.startswith(_DLQ))

    async def queues(self, source: str | None) -> list[str]:
        """Dead-letter queues to look at: the one of `source`, or every known or non-empty one."""
        if source is not None:
            return [_DLQ + source]
        present = [s.queue for s in await self.store.stats() if s.queue.startswith(_DLQ)]
        return sorted({*self.known, *present})

    async def list(self, request: Request) -> Response:
        limit = _int_param(request, "limit", 100, 1, _MAX_LIMIT)
        offset = _int_param(request, "offset", 0, 0, 10**9)
        queues = await self.queues(request.query_params.get("source") or None)
        stats = await self.store.stats(queues)
        total = sum(s.depth for s in stats)
        messages: list[Message] = []
        for queue in queues:
            messages += await self.store.peek(queue, limit=offset + limit)
        messages.sort(key=lambda m: (m.visible_ms, m.created_ms, m.id))
        page = [dead_letter_view(m) for m in messages[offset : offset + limit]]
        return JSONResponse(page, headers={"x-total-count": str(total)})

    async def show(self, request: Request) -> Response:
        source, message_id = request.path_params["source"], request.path_params["id"]
        message = await self.store.get(_DLQ + source, message_id)
        if message is None:
            return _error(404, f"no dead letter {message_id!r} from source {source!r}")
        return JSONResponse(dead_letter_view(message))

    async def redrive(self, request: Request) -> Response:
        body = await _json_body(request)
        source = body.get("source")
        ids = body.get("ids")
        if source is not None and not isinstance(source, str):
            raise _BadRequest(f"source: expected a string, got {source!r}")
        if ids is not None and (
            not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)
        ):
            raise _BadRequest(f"ids: expected a list of strings, got {ids!r}")
        redriven: list[dict[str, str]] = []
        if ids is not None:
            missing = []
            queues = await self.queues(source)
            for message_id in dict.fromkeys(ids):
                for queue in queues:
                    message = await self.store.get(queue, message_id)
                    if message is not None:
                        await self._back(message)
                        redriven.append({"source": queue.removeprefix(_DLQ), "id": message_id})
                        break
                else:
                    missing.append(message_id)
            return JSONResponse({"redriven": redriven, "missing": missing})
        for queue in await self.queues(source):
            seen: set[str] = set()
            while page := [
                m for m in await self.store.peek(queue, limit=_REDRIVE_PAGE) if m.id not in seen
            ]:
                for message in page:
                    seen.add(message.id)
                    await self._back(message)
                    redriven.append({"source": queue.removeprefix(_DLQ), "id": message.id})
        return JSONResponse({"redriven": redriven, "missing": []})

    async def _back(self, message: Message) -> None:
        """Put a dead letter back in its source queue as a new delivery (same id, receive
        count and age reset, so max_event_age counts from the redrive), then delete it here.
        Enqueue first: a crash in between leaves a copy in both, never in neither, and a second
        redrive of it finds the id in the source queue and only deletes the dead letter."""
        source = message.queue.removeprefix(_DLQ)
        retry = NewMessage(
            queue=source, body=message.body, attributes=message.attributes, message_id=message.id
        )
        with contextlib.suppress(DuplicateMessage):  # already back from an earlier redrive
            await self.store.enqueue([retry], now_ms=int(self.clock.wall() * 1000))
        await self.store.delete(message.queue, message.id)

    async def purge(self, request: Request) -> Response:
        source = request.query_params.get("source")
        if not source:
            raise _BadRequest("query parameter source: required (the dead letters' source queue)")
        purged = await self.store.purge(_DLQ + source)
        return JSONResponse({"source": source, "purged": purged})


def _attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise _BadRequest(f"attributes: expected a JSON object, got {attributes!r}")
    return attributes


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise _BadRequest(f"{key}: expected a string, got {value!r}")
    return value


def admin_app(
    token: str,
    status: Callable[[], dict[str, Any]],
    *,
    store: Store | None = None,
    dead_letter_queues: Iterable[str] | Callable[[], Iterable[str]] = (),
    send: SendMessage | None = None,
    publish: PublishMessage | None = None,
    function_token: str | None = None,
    clock: Clock | None = None,
    metrics: MetricsScrape | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    public_paths: tuple[str, ...] = (),
    tables: ServiceTables | None = None,
    retention_s: float | None = None,  # how long records are kept: /cost looks no further back
) -> ASGIApp:
    """The admin API. `dead_letter_queues` names the `dlq:<source>` queues the app can fill
    (listed even when empty; a function giving them is asked on each request); `send` and
    `publish` are the producers (None: not available); `extra_routes` are more routes behind
    the token, except GET/HEAD of `public_paths`."""
    dlq = _DeadLetters(store, dead_letter_queues, clock or SystemClock()) if store else None

    async def get_status(request: Request) -> Response:
        return JSONResponse(status())

    def needs_store(
        handler: Callable[[_DeadLetters, Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if dlq is None:
                return _error(503, "dead letters are not available: the platform has no store")
            try:
                return await handler(dlq, request)
            except _BadRequest as exc:
                return _error(400, str(exc))
            except LaminaError as exc:
                return _error(_status_of(exc), str(exc))

        return endpoint

    async def post_message(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            body = await _json_body(request)
            if send is None:
                return _error(503, f"queue {name!r}: queues are not available on this platform yet")
            delay = body.get("delay_seconds", 0)
            if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
                raise _BadRequest(f"delay_seconds: expected a number >= 0, got {delay!r}")
            message_id = await send(
                name,
                _text(body, "body"),
                attributes=_attributes(body),
                delay_s=float(delay),
                traceparent=request.headers.get("traceparent"),
            )
        except _BadRequest as exc:
            return _error(400, f"queue {name!r}: {exc}")
        except LaminaError as exc:
            return _error(_status_of(exc), str(exc))
        except ValueError as exc:
            return _error(400, f"queue {name!r}: {exc}")
        return JSONResponse({"queue": name, "message_id": message_id}, status_code=201)

    async def publish_message(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            body = await _json_body(request)
            if publish is None:
                return _error(503, f"topic {name!r}: topics are not available on this platform yet")
            subject = body.get("subject")
            if subject is not None and not isinstance(subject, str):
                raise _BadRequest(f"subject: expected a string, got {subject!r}")
            message_id = await publish(
                name,
                _text(body, "message"),
                subject=subject,
                attributes=_attributes(body),
                traceparent=request.headers.get("traceparent"),
            )
        except _BadRequest as exc:
            return _error(400, f"topic {name!r}: {exc}")
        except LaminaError as exc:
            return _error(_status_of(exc), str(exc))
        except ValueError as exc:
            return _error(400, f"topic {name!r}: {exc}")
        return JSONResponse({"topic": name, "message_id": message_id}, status_code=201)

    app = Starlette(
        routes=[
            Route("/status", get_status, methods=["GET"]),
            *([metrics_route(metrics)] if metrics is not None else []),
            *(
                telemetry_routes(store, clock or SystemClock(), retention_s)
                if store is not None
                else []
            ),
            Route("/dlq", needs_store(_DeadLetters.list), methods=["GET"]),
            Route("/dlq", needs_store(_DeadLetters.purge), methods=["DELETE"]),
            Route("/dlq/redrive", needs_store(_DeadLetters.redrive), methods=["POST"]),
            Route("/dlq/{source}/{id}", needs_store(_DeadLetters.show), methods=["GET"]),
            Route("/queues/{name}/messages", post_message, methods=["POST"]),
            Route("/topics/{name}/messages", publish_message, methods=["POST"]),
            *extra_routes,
            *(table_routes(tables) if tables is not None else []),
        ]
    )
    return BearerAuth(app, token, function_token=function_token, public_paths=public_paths)
