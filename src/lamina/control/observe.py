"""Admin API routes for what the recorder kept: `GET /invocations`, `GET /logs`,
`GET /traces/{trace_id}` and `GET /cost`.

`/invocations` and `/logs` take the fixed filters `function`, `request_id`, `trace_id`, `since`,
`limit`; `/logs` also takes `grep` and `after_seq` (for `lamina logs --follow`), and with
`trace_id` gives the lines of every request in that trace. `/traces/{trace_id}` returns the
trace's spans (one per invocation record) oldest first, parents before their children. `since`
is a duration back from now (`30s`, `10m`, `2h`, `1d`), an ISO 8601 time, or epoch milliseconds.
`/invocations` pages newest first: a full page carries an `X-Next-Cursor` header; pass it back
as `cursor=` for the next one (records that started in the same millisecond are never skipped).
START / END / REPORT lines are not stored: they are made from the invocation records when
`/logs` is read, so recording costs the request path one record per invocation.
`/cost` takes `function`, `since` (default 1d), `by` (service | function) and the prices
`gb_second_price` (USD per GB-second) and `request_price` (USD per million requests); see
`lamina.telemetry.cost` for the formulas.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lamina.clock import Clock
from lamina.errors import LaminaError
from lamina.store.types import InvocationRecord, LogLine, TelemetryStore
from lamina.telemetry.cost import BY_VALUES, DEFAULT_PRICES, By, Prices, cost_report
from lamina.telemetry.recorder import report_lines

__all__ = [
    "DEFAULT_COST_SINCE",
    "STATUSES",
    "cost_route",
    "parse_since",
    "telemetry_routes",
    "trace_view",
]

DEFAULT_COST_SINCE = "1d"  # `/cost` without `since`: the last 24 hours

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_XRAY_ID = re.compile(r"1-([0-9a-f]{8})-([0-9a-f]{24})")
_TRACE_SPANS = 1000  # spans a trace view shows at most
# An invocation record's status (the `status` filter of `/invocations`).
STATUSES = (
    "ok",
    "error",
    "timeout",
    "crashed",
    "out_of_memory",
    "init_error",
    "throttled",
    "cancelled",
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now_s: float) -> int:
    """`since` as epoch ms; raises ValueError saying what forms are accepted."""
    text = text.strip()
    m = _DURATION.match(text)
    if m:
        return int((now_s - float(m.group(1)) * _UNIT_S[m.group(2)]) * 1000)
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"since: expected a duration like 10m, 2h, 30s or 1d, an ISO 8601 time, or epoch "
            f"milliseconds; got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _limit(request: Request, default: int, high: int) -> int:
    raw = request.query_params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise ValueError(f"limit: expected a whole number 1-{high}, got {raw!r}")
    return int(raw)


def _cursor(text: str) -> tuple[int, int]:
    """A page cursor (`X-Next-Cursor` of the previous page: `<start_ms>.<seq>`); ValueError."""
    start, _, seq = text.partition(".")
    if not (start.isdigit() and seq.isdigit()):
        raise ValueError(
            f"cursor: expected the X-Next-Cursor header of the previous page, got {text!r}"
        )
    return int(start), int(seq)


def _iso(ms: int) -> str:
    return (
        datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _line_view(line: LogLine) -> dict[str, Any]:
    return {**dataclasses.asdict(line), "time": _iso(line.time_ms)}


_PLATFORM_ORDER = {"START": 0, "END": 2, "REPORT": 3}


def _order(line: LogLine) -> tuple[int, int, int]:
    """Time order; in one millisecond START, then the function's lines, then END and REPORT."""
    rank = 1
    if line.stream == "platform":
        rank = _PLATFORM_ORDER.get(line.message.split(" ", 1)[0], 1)
    return (line.time_ms, rank, line.seq)


def _status(text: str | None) -> str | None:
    if text is None or text in STATUSES:
        return text
    raise ValueError(f"status: expected one of {', '.join(STATUSES)}; got {text!r}")


def _trace_id(text: str) -> str:
    """A W3C trace id (or an X-Ray one, `1-xxxxxxxx-x…x`, for the same trace); ValueError."""
    text = text.strip().lower()
    if _TRACE_ID.fullmatch(text):
        return text
    m = _XRAY_ID.fullmatch(text)
    if m:
        return m.group(1) + m.group(2)
    raise ValueError(f"trace_id: expected 32 hex digits, got {text!r}")


def trace_view(trace_id: str, records: list[InvocationRecord]) -> dict[str, Any]:
    """A trace as `GET /traces/{trace_id}` shows it: one span per record, oldest first and
    parents before children. A parent outside the recorded spans (the caller that sent the
    `traceparent`) shows as `remote_parent_span_id`, and the span as a root."""
    ids = {r.span_id for r in records if r.span_id}
    by_id = {r.span_id: r for r in records if r.span_id}

    def depth(record: InvocationRecord) -> int:
        seen = 0
        while record.parent_span_id in by_id and seen < len(by_id):
            record = by_id[record.parent_span_id]
            seen += 1
        return seen

    spans = []
    for r in sorted(records, key=lambda r: (r.start_ms, depth(r))):
        local = r.parent_span_id in ids
        spans.append(
            {
                "span_id": r.span_id,
                "parent_span_id": r.parent_span_id if local else None,
                "remote_parent_span_id": None if local else r.parent_span_id,
                "name": r.function_id,
                "service": r.function_id.split(".", 1)[0],
                "function": r.function_id,
                "request_id": r.request_id,
                "trigger": r.trigger,
                "start_ms": r.start_ms,
                "duration_ms": r.duration_ms,
                "status": r.status,
                "error_type": r.error_type,
                "cold": r.cold,
            }
        )
    return {"trace_id": trace_id, "spans": spans}


def telemetry_routes(
    store: TelemetryStore, clock: Clock, retention_s: float | None = None
) -> list[Route]:
    async def invocations(request: Request) -> Response:
        q = request.query_params
        try:
            since = parse_since(q["since"], clock.wall()) if "since" in q else None
            before = int(q["before_ms"]) if q.get("before_ms", "").isdigit() else None
            before_seq = None
            if q.get("cursor"):
                before, before_seq = _cursor(q["cursor"])
            limit = _limit(request, 100, 1000)
            records = await store.invocations(
                function_id=q.get("function"),
                request_id=q.get("request_id"),
                trace_id=_trace_id(q["trace_id"]) if q.get("trace_id") else None,
                status=_status(q.get("status")),
                since_ms=since,
                before_ms=before,
                before_seq=before_seq,
                limit=limit,
            )
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        except LaminaError as exc:
            return JSONResponse({"message": str(exc)}, status_code=503)
        headers = {}
        if len(records) == limit:  # there may be more: where the next page starts
            headers["X-Next-Cursor"] = f"{records[-1].start_ms}.{records[-1].seq}"
        return JSONResponse(
            [{**dataclasses.asdict(r), "start": _iso(r.start_ms)} for r in records],
            headers=headers,
        )

    async def logs(request: Request) -> Response:
        q = request.query_params
        try:
            since = parse_since(q["since"], clock.wall()) if "since" in q else None
            after = int(q["after_seq"]) if q.get("after_seq", "").isdigit() else None
            limit = _limit(request, 1000, 10000)
            trace_id = _trace_id(q["trace_id"]) if q.get("trace_id") else None
            traced: list[InvocationRecord] = []
            request_ids: dict[str | None, None]
            if trace_id is not None:  # the lines of each request of the trace
                traced = await store.invocations(
                    function_id=q.get("function"),
                    request_id=q.get("request_id"),
                    trace_id=trace_id,
                    since_ms=since,
                    limit=_TRACE_SPANS,
                )
                request_ids = dict.fromkeys(r.request_id for r in traced)
            else:
                request_ids = dict.fromkeys([q.get("request_id")])
            lines = []
            for request_id in request_ids:
                lines += await store.logs(
                    function_id=q.get("function"),
                    request_id=request_id,
                    since_ms=since,
                    grep=q.get("grep"),
                    after_seq=after,
                    limit=limit,
                    newest=after is None,  # a plain read shows the latest lines, like `tail`
                )
            if trace_id is not None:
                lines.sort(key=lambda line: line.seq)
            if q.get("platform_lines", "1") != "0":
                records = traced
                if trace_id is None:
                    records = await store.invocations(
                        function_id=q.get("function"),
                        request_id=q.get("request_id"),
                        since_ms=since,
                        limit=limit,
                    )
                grep = q.get("grep")
                lines += [
                    line
                    for record in records
                    if record.status != "throttled"
                    for line in report_lines(record)
                    if not grep or grep in line.message
                ]
                lines.sort(key=_order)
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        except LaminaError as exc:
            return JSONResponse({"message": str(exc)}, status_code=503)
        return JSONResponse([_line_view(line) for line in lines[-limit:]])

    async def trace(request: Request) -> Response:
        try:
            trace_id = _trace_id(request.path_params["trace_id"])
            records = await store.invocations(trace_id=trace_id, limit=_TRACE_SPANS)
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        except LaminaError as exc:
            return JSONResponse({"message": str(exc)}, status_code=503)
        if not records:
            message = (
                f"no spans recorded for trace {trace_id} (yet: records are written each second)"
            )
            return JSONResponse({"message": message}, status_code=404)
        return JSONResponse(trace_view(trace_id, records))

    return [
        Route("/invocations", invocations, methods=["GET"]),
        Route("/logs", logs, methods=["GET"]),
        Route("/traces/{trace_id}", trace, methods=["GET"]),
        cost_route(store, clock, retention_s),
    ]


def _price(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a price >= 0 in USD, got {raw!r}")
    return value


def _by(request: Request) -> By:
    raw = request.query_params.get("by", "service")
    for by in BY_VALUES:
        if raw == by:
            return by
    raise ValueError(f"by: expected service or function, got {raw!r}")


def cost_route(store: TelemetryStore, clock: Clock, retention_s: float | None = None) -> Route:
    """`GET /cost`: requests, GB-seconds and cost from `since` until now, per service or
    function, beside the always-on equivalent (shape: `CostReport.to_json`). The window starts
    no earlier than `retention_s` ago: records older than that are gone, and an always-on
    instance priced back to 1970 (`since=0`) says nothing. The report's `since_ms` is the
    window used."""

    async def cost(request: Request) -> Response:
        q = request.query_params
        try:
            now_s = clock.wall()
            until = int(now_s * 1000)
            text = q.get("since", DEFAULT_COST_SINCE)
            since = parse_since(text, now_s)
            if since >= until:
                raise ValueError(f"since: expected a time in the past, got {text!r}")
            if retention_s is not None:
                since = max(since, until - int(retention_s * 1000))
            by = _by(request)
            prices = Prices(
                gb_second=_price(request, "gb_second_price", DEFAULT_PRICES.gb_second),
                request_per_million=_price(
                    request, "request_price", DEFAULT_PRICES.request_per_million
                ),
            )
            usage = await store.usage(since_ms=since, until_ms=until, function_id=q.get("function"))
            report = cost_report(usage, since_ms=since, until_ms=until, by=by, prices=prices)
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        except LaminaError as exc:
            return JSONResponse({"message": str(exc)}, status_code=503)
        return JSONResponse(report.to_json())

    return Route("/cost", cost, methods=["GET"])
