"""`lamina invocations`, `lamina logs` and `lamina trace`: what a running platform recorded, via
its admin API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from lamina.cli._common import AdminUrlOpt, AppDir, TokenOpt, admin_call, out, target

__all__ = [
    "INVOCATIONS_EXAMPLE",
    "LOGS_EXAMPLE",
    "TRACE_EXAMPLE",
    "invocations",
    "logs",
    "trace",
    "waterfall",
]

INVOCATIONS_EXAMPLE = "Example: lamina invocations greeter.hello --since 10m"
LOGS_EXAMPLE = "Example: lamina logs greeter.hello --since 10m --grep ERROR --follow"
TRACE_EXAMPLE = (
    "Example: lamina trace 4bf92f3577b34da6a3ce929d0e0e4736  (the trace id is in the response's"
    " traceresponse header: 00-TRACE_ID-SPAN_ID-01)"
)

FunctionArg = Annotated[
    str | None, typer.Argument(help="Function id (service.function); all functions when left out.")
]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="Only since then: a duration back (30s, 10m, 2h, 1d) or an ISO 8601 time."),
]
TraceIdOpt = Annotated[str | None, typer.Option(help="Only this trace (32 hex digits).")]
_BAR_WIDTH = 32  # characters of the waterfall's bar column
_FOLLOW_POLL_S = 0.5


def invocations(
    function_id: FunctionArg = None,
    since: SinceOpt = None,
    request_id: Annotated[str | None, typer.Option(help="Only this request id.")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="Only this status: ok, error, timeout, crashed, out_of_memory, init_error,"
            " throttled or cancelled."
        ),
    ] = None,
    trace_id: TraceIdOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List recent invocations, newest first: version, trigger, duration, memory, cold start,
    status."""
    where = target(app_dir, "-", admin_url, token)
    params = _params(
        function=function_id, since=since, request_id=request_id, status=status, trace_id=trace_id
    )
    params["limit"] = limit
    records = admin_call(where, "GET", "/invocations", params=params).json()
    if as_json:
        out.print_json(data=records)
        return
    if not records:
        filtered = len(params) > 1
        out.print("No invocations recorded" + (" that match." if filtered else " yet."))
        return
    table = Table(box=box.SIMPLE_HEAD)
    for header in ("start (UTC)", "function", "version", "request id", "trigger"):
        table.add_column(header)
    for header in ("ms", "billed\nms", "MB"):
        table.add_column(header, justify="right")
    table.add_column("cold")
    table.add_column("status")
    for r in records:
        cold = f"{r['init_ms']:.1f} ms init" if r["cold"] and r["init_ms"] is not None else ""
        cold = cold or ("cold" if r["cold"] else "")
        table.add_row(
            r["start"][11:23],
            r["function_id"],
            r.get("version") or "-",
            r["request_id"],
            r["trigger"],
            f"{r['duration_ms']:.2f}",
            str(r["billed_ms"]),
            f"{r['max_memory_mb'] or '-'}/{r['memory_mb']}",
            cold,
            r["status"] + (f" ({r['error_type']})" if r["error_type"] else ""),
        )
    out.print(table)


def logs(
    function_id: FunctionArg = None,
    since: SinceOpt = None,
    request_id: Annotated[str | None, typer.Option(help="Only this request id.")] = None,
    grep: Annotated[str | None, typer.Option(help="Only lines containing this text.")] = None,
    trace_id: Annotated[
        str | None, typer.Option(help="Only the lines of this trace's requests.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many lines.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Print what functions wrote, with Lambda's START / END / REPORT lines."""
    where = target(app_dir, "-", admin_url, token)
    params = _params(
        function=function_id, since=since, request_id=request_id, grep=grep, trace_id=trace_id
    )
    params["limit"] = limit
    seen: set[tuple[Any, ...]] = set()
    last_ms = 0
    while True:
        for line in admin_call(where, "GET", "/logs", params=params).json():
            key = (
                line["time_ms"],
                line["seq"],
                line["stream"],
                line["request_id"],
                line["message"],
            )
            if key in seen:
                continue
            seen.add(key)
            last_ms = max(last_ms, line["time_ms"])
            _print_line(line, as_json)
        if not follow:
            return
        # Lines of the last millisecond seen may still arrive: ask from it, skip repeats.
        params["since"] = str(last_ms) if last_ms else params.get("since", "1s")
        seen = {key for key in seen if key[0] >= last_ms}
        time.sleep(_FOLLOW_POLL_S)


def trace(
    trace_id: Annotated[str, typer.Argument(help="Trace id: 32 hex digits (or X-Ray 1-...-...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show one trace as a waterfall: every invocation in it, callers above what they caused."""
    where = target(app_dir, "-", admin_url, token)
    view = admin_call(where, "GET", f"/traces/{trace_id.strip()}").json()
    if as_json:
        out.print_json(data=view)
        return
    rows = waterfall(view["spans"])
    begin = min(s["start_ms"] for s in view["spans"])
    end = max(s["start_ms"] + s["duration_ms"] for s in view["spans"])
    total = max(end - begin, 1.0)
    cells = [
        [
            "  " * depth + ("└ " if depth else "") + s["name"],
            s["trigger"] + (", cold" if s["cold"] else ""),
            s["status"] + (f" ({s['error_type']})" if s["error_type"] else ""),
            f"+{s['start_ms'] - begin:.0f}",
            f"{s['duration_ms']:.1f}",
        ]
        for depth, s in rows
    ]
    headers = ["span", "trigger", "status", "start", "ms"]
    # Each column takes its text, a space either side and a separator: the bars get the rest.
    used = sum(max(len(c) for c in col) + 3 for col in zip(headers, *cells, strict=True))
    width = max(8, min(48, out.width - used - 4))
    table = Table(
        title=f"trace {view['trace_id']}  ({len(rows)} spans, {total:.0f} ms)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for header in headers:
        table.add_column(
            header, no_wrap=True, justify="right" if header in ("start", "ms") else "left"
        )
    table.add_column("", no_wrap=True, min_width=width)
    for (_depth, s), row in zip(rows, cells, strict=True):
        lead = min(round((s["start_ms"] - begin) / total * width), width - 1)
        size = min(max(1, round(s["duration_ms"] / total * width)), width - lead)
        color = "green" if s["status"] == "ok" else "red"
        table.add_row(*map(escape, row), f"{' ' * lead}[{color}]{'█' * size}[/]")
    out.print(table)


def waterfall(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Spans in tree order with their depth: each after its parent, siblings by start time.
    A span whose parent is not in the list is a root."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in sorted(spans, key=lambda s: s["start_ms"]):
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(s)
    rows: list[tuple[int, dict[str, Any]]] = []
    stack = [(0, s) for s in reversed(children.get(None, []))]
    while stack:
        depth, s = stack.pop()
        rows.append((depth, s))
        stack += [(depth + 1, c) for c in reversed(children.get(s["span_id"], []))]
    return rows


def _params(**values: str | None) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value}


def _print_line(line: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print(orjson.dumps(line).decode(), highlight=False, markup=False, soft_wrap=True)
        return
    rid = (line["request_id"] or "")[-8:]  # as on the platform's console: the varying part
    style = (
        "bold red"
        if line["level"] in ("ERROR", "CRITICAL")
        else ("dim" if line["stream"] == "platform" else "")
    )
    text = escape(f"{line['time'][11:23]} [{line['function_id']} {rid}] {line['message']}")
    out.print(f"[{style}]{text}[/]" if style else text, highlight=False, soft_wrap=True)
