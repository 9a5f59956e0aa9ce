"""Admin API routes the dashboard reads besides /status, /invocations, /logs and /dlq:

    GET /stats[?since=15m&step=10s&function=ID]  time series per function (charts)
    GET /map                                      services, functions and what connects them
    GET /queues                                   every queue's depth and its dead letters

plus the dashboard's page itself (`/` and `/ui/...`, served without the token: they hold no
data; every call the page makes sends the token). Queue names are the store's: `async:<fid>`,
`queue:<name>`, `sub:<topic>:<fid>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lamina.clock import Clock
from lamina.control.observe import parse_since
from lamina.dashboard import asset_routes
from lamina.dashboard.series import DURATION_BOUNDS_MS, Window, series
from lamina.dashboard.topology import SpanLink, app_map, observed_edges
from lamina.errors import LaminaError
from lamina.manifest import AppSpec
from lamina.store.types import InvocationRecord, Store

__all__ = ["dashboard_routes", "queue_view"]

_STEP = re.compile(r"^(\d+)(s|m|h)$")
_STEP_MS = {"s": 1000, "m": 60_000, "h": 3_600_000}
_DLQ = "dlq:"
_MAP_WINDOW_MS = 15 * 60_000  # observed calls: from this far back
_MAP_RECORDS = 5000  # and from at most this many records
_KIND_ORDER = {"queue": 0, "subscription": 1, "async": 2}


def _step_ms(text: str) -> int:
    m = _STEP.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"step: expected a duration like 5s, 1m or 1h, got {text!r}")
    return int(m.group(1)) * _STEP_MS[m.group(2)]


def _queue_kind(queue: str) -> tuple[str, str]:
    """(kind, name) of a store queue: ("queue", "orders"), ("async", "svc.fn"),
    ("subscription", "topic -> svc.fn")."""
    prefix, _, rest = queue.partition(":")
    if prefix == "sub":
        topic, _, fid = rest.partition(":")
        return "subscription", f"{topic} -> {fid}"
    if prefix in ("queue", "async"):
        return prefix, rest
    return "other", queue


def queue_view(
    queue: str,
    depth: int,
    visible: int,
    oldest_created_ms: int | None,
    dead_letters: int,
    now_ms: int,
) -> dict[str, Any]:
    """One row of `GET /queues`."""
    kind, name = _queue_kind(queue)
    oldest_age = None if oldest_created_ms is None else max(0, now_ms - oldest_created_ms) / 1000
    return {
        "queue": queue,
        "kind": kind,
        "name": name,
        "depth": depth,
        "visible": visible,
        "in_flight": max(0, depth - visible),
        "oldest_age_s": oldest_age,
        "dead_letters": dead_letters,
    }


def _span_link(record: InvocationRecord) -> SpanLink | None:
    if not record.span_id:
        return None
    return SpanLink(record.span_id, record.parent_span_id, record.function_id, record.trigger)


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=400)


def _unavailable(exc: LaminaError) -> JSONResponse:
    return JSONResponse({"message": str(exc)}, status_code=503)


def dashboard_routes(
    app: AppSpec | Callable[[], AppSpec],
    store: Store,
    clock: Clock,
    dead_letter_queues: Iterable[str] | Callable[[], Iterable[str]] = (),
) -> list[BaseRoute]:
    """The routes above for `app`; `dead_letter_queues` names every `dlq:<source>` the app can
    fill, so `/queues` lists their sources even when empty. Either may be a function giving
    the current value, read on each request, so a hot reload that adds or removes functions
    shows at once."""
    current_app = app if callable(app) else lambda: app
    dlqs = dead_letter_queues if callable(dead_letter_queues) else lambda: dead_letter_queues

    def sources() -> list[str]:
        return sorted(q.removeprefix(_DLQ) for q in dlqs() if q.startswith(_DLQ))

    async def stats(request: Request) -> Response:
        q = request.query_params
        now_ms = int(clock.wall() * 1000)
        function_id = q.get("function") or None
        try:
            window = Window(
                since_ms=parse_since(q.get("since", "15m"), clock.wall()),
                until_ms=now_ms + 1,  # the current millisecond included
                step_ms=_step_ms(q.get("step", "10s")),
            )
            window.check()
        except ValueError as exc:
            return _bad(str(exc))
        try:
            rows = await store.invocation_stats(
                since_ms=window.first_ms,
                until_ms=window.until_ms,
                step_ms=window.step_ms,
                bounds_ms=DURATION_BOUNDS_MS,
                function_id=function_id,
            )
        except LaminaError as exc:
            return _unavailable(exc)
        shown = [function_id] if function_id else list(current_app().functions())
        return JSONResponse(series(rows, window, shown))

    async def topology(request: Request) -> Response:
        since_ms = int(clock.wall() * 1000) - _MAP_WINDOW_MS
        try:
            records = await store.invocations(since_ms=since_ms, limit=_MAP_RECORDS)
        except LaminaError as exc:
            return _unavailable(exc)
        links = [link for link in map(_span_link, records) if link is not None]
        return JSONResponse(app_map(current_app(), observed_edges(links)))

    async def queues(request: Request) -> Response:
        now_ms = int(clock.wall() * 1000)
        try:
            present = [s.queue for s in await store.stats() if not s.queue.startswith(_DLQ)]
            names = sorted({*sources(), *present})
            found = await store.stats(names + [_DLQ + name for name in names])
        except LaminaError as exc:
            return _unavailable(exc)
        by_name = {s.queue: s for s in found}
        rows = [
            queue_view(
                name,
                by_name[name].depth,
                by_name[name].visible,
                by_name[name].oldest_created_ms,
                by_name[_DLQ + name].depth,
                now_ms,
            )
            for name in names
        ]
        # The app's own queues and subscriptions first, then each function's async queue.
        rows.sort(key=lambda row: (_KIND_ORDER.get(row["kind"], 9), row["name"]))
        return JSONResponse(rows)

    return [
        Route("/stats", stats, methods=["GET"]),
        Route("/map", topology, methods=["GET"]),
        Route("/queues", queues, methods=["GET"]),
        *asset_routes(),
    ]
