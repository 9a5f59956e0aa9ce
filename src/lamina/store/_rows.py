"""Row <-> record conversion shared by the backends: JSON columns, ids, `Message` building,
invocation records and log lines."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from lamina.store.types import (
    FunctionUsage,
    LogLine,
    Message,
    NewMessage,
    StatsRow,
    invocation_from_row,
    invocation_row,
    storable_text,
)

__all__ = [
    "COLUMNS",
    "INVOCATION_COLUMNS",
    "LOG_COLUMNS",
    "dump_json",
    "first_duplicate",
    "invocation_from_row",
    "invocation_row",
    "invocations_query",
    "load_json",
    "log_from_row",
    "log_row",
    "logs_query",
    "message_from_row",
    "new_id",
    "redact",
    "stats_from_row",
    "stats_query",
    "usage_from_row",
    "usage_query",
]

# The column order every backend selects and `message_from_row` expects (seq first).
COLUMNS = (
    "seq",
    "id",
    "queue",
    "body",
    "attributes",
    "created_ms",
    "receive_count",
    "first_received_ms",
    "lease_token",
    "visible_ms",
    "last_error",
)


def new_id() -> str:
    return str(uuid.uuid4())


def dump_json(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value if isinstance(value, dict) else dict(value)).decode()


def load_json(text: str | bytes | None) -> dict[str, Any] | None:
    if text is None:
        return None
    loaded: dict[str, Any] = orjson.loads(text)
    return loaded


def message_from_row(row: Sequence[Any]) -> Message:
    """Build a `Message` from a row in `COLUMNS` order."""
    return Message(
        id=row[1],
        queue=row[2],
        body=bytes(row[3]),
        attributes=load_json(row[4]) or {},
        created_ms=row[5],
        receive_count=row[6],
        first_received_ms=row[7],
        lease_token=row[8],
        visible_ms=row[9],
        last_error=load_json(row[10]),
    )


def first_duplicate(messages: Sequence[NewMessage], ids: Sequence[str]) -> tuple[str, str] | None:
    """The first (queue, id) that occurs twice within one enqueue batch, if any."""
    seen: set[tuple[str, str]] = set()
    for message, message_id in zip(messages, ids, strict=True):
        key = (message.queue, message_id)
        if key in seen:
            return key
        seen.add(key)
    return None


def redact(url: str) -> str:
    """`url` with its password replaced by `***`, for error messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparsable URL>"


# The columns an invocation record is inserted and selected with, in `InvocationRecord` order.
INVOCATION_COLUMNS = (
    "request_id",
    "function_id",
    "trigger",
    "start_ms",
    "duration_ms",
    "billed_ms",
    "init_ms",
    "cold",
    "memory_mb",
    "max_memory_mb",
    "status",
    "error_type",
    "instance_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "version",
)

# The columns a log line is inserted with (`seq` is assigned by the store; selects add it last).
LOG_COLUMNS = ("time_ms", "function_id", "request_id", "instance_id", "stream", "level", "message")


def log_row(line: LogLine) -> tuple[Any, ...]:
    """`line` as a row in `LOG_COLUMNS` order (its `seq` is ignored: the store assigns one)."""
    return (
        line.time_ms,
        line.function_id,
        line.request_id,
        line.instance_id,
        line.stream,
        line.level,
        storable_text(line.message),
    )


def log_from_row(row: Sequence[Any]) -> LogLine:
    """Build a `LogLine` from a row in `LOG_COLUMNS` order followed by `seq`."""
    return LogLine(
        time_ms=row[0],
        function_id=row[1],
        request_id=row[2],
        instance_id=row[3],
        stream=row[4],
        level=row[5],
        message=row[6],
        seq=row[7],
    )


def invocations_query(
    *,
    ph: str,  # the backend's placeholder: "?" or "%s"
    int_ph: str,  # the placeholder for a bigint, e.g. "%s::bigint"
    function_id: str | None,
    request_id: str | None,
    trace_id: str | None,
    status: str | None,
    since_ms: int | None,
    before_ms: int | None,
    limit: int,
    before_seq: int | None = None,
) -> tuple[str, list[Any]]:
    """The SELECT for `TelemetryStore.invocations`: the given filters ANDed, newest first (ties:
    the later insert first). Only present filters appear, so each combination is its own
    constant statement that the database plans with the right index and can prepare."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        (f"function_id = {ph}", function_id),
        (f"request_id = {ph}", request_id),
        (f"trace_id = {ph}", trace_id),
        (f"status = {ph}", status),
        (f"start_ms >= {int_ph}", since_ms),
        (f"start_ms < {int_ph}", before_ms if before_seq is None else None),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if before_ms is not None and before_seq is not None:  # a row value: one index range scan
        where.append(f"(start_ms, id) < ({int_ph}, {int_ph})")
        params += [before_ms, before_seq]
    params.append(limit)
    query = (
        f"SELECT {', '.join(INVOCATION_COLUMNS)}, id FROM invocations{_where(where)}"
        f" ORDER BY start_ms DESC, id DESC LIMIT {int_ph}"
    )
    return query, params


def logs_query(
    *,
    ph: str,  # the backend's placeholder: "?" or "%s"
    int_ph: str,  # the placeholder for a bigint, e.g. "%s::bigint"
    find: str,  # the backend's substring position function: instr (SQLite), strpos (PostgreSQL)
    function_id: str | None,
    request_id: str | None,
    since_ms: int | None,
    grep: str | None,
    after_seq: int | None,
    limit: int,
    newest: bool = False,
) -> tuple[str, list[Any]]:
    """The SELECT for `TelemetryStore.logs`: the given filters ANDed, oldest (lowest seq) first;
    with `newest`, the last `limit` matching lines (still returned oldest first).
    `grep` is a plain substring (no LIKE), so `%` and `_` match only themselves."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        (f"function_id = {ph}", function_id),
        (f"request_id = {ph}", request_id),
        (f"time_ms >= {int_ph}", since_ms),
        (f"seq > {int_ph}", after_seq),
        (f"{find}(message, {ph}) > 0", grep),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    params.append(limit)
    columns = f"{', '.join(LOG_COLUMNS)}, seq"
    query = f"SELECT {columns} FROM logs{_where(where)} ORDER BY seq LIMIT {int_ph}"
    if newest:
        query = (
            f"SELECT * FROM (SELECT {columns} FROM logs{_where(where)}"
            f" ORDER BY seq DESC LIMIT {int_ph}) AS tail ORDER BY seq"
        )
    return query, params


def usage_query(
    *,
    ph: str,  # the backend's placeholder: "?" or "%s"
    int_ph: str,  # the placeholder for a bigint, e.g. "%s::bigint"
    floor_ms: str,  # the backend's floor(duration_ms) as an integer expression
    since_ms: int,
    until_ms: int,
    function_id: str | None,
) -> tuple[str, list[Any]]:
    """The SELECT for `TelemetryStore.usage`: per function, the invocations that started in
    [since_ms, until_ms) and were not throttled: how many, sum(billed_ms x memory_mb), the largest
    memory, and the peak concurrency.

    Peak concurrency is a sweep: each invocation occupies [start_ms, start_ms + floor(duration_ms))
    and contributes +1 at its start and -1 at its end; the running sum, ordered by time with ends
    before starts at the same millisecond, peaks at the most invocations running at once. Flooring
    the end keeps back-to-back invocations on one instance apart: start_ms is the wall clock
    truncated to the millisecond, so floor(start) + floor(duration) <= floor(next start).
    Example (tests/component/store/test_store_usage.py): [0, 10), [5, 15) and [10, 20) peak at 2
    (the first ends where the third starts). An invocation shorter than 1 ms occupies no time at
    this resolution; `usage_from_row` counts a function that ran at least once as a peak of 1."""
    where = [f"start_ms >= {int_ph}", f"start_ms < {int_ph}", "status <> 'throttled'"]
    params: list[Any] = [since_ms, until_ms]
    if function_id is not None:
        where.append(f"function_id = {ph}")
        params.append(function_id)
    query = f"""WITH inv AS (
    SELECT function_id, start_ms, start_ms + {floor_ms} AS end_ms, billed_ms, memory_mb
    FROM invocations{_where(where)}
  ), edges AS (
    SELECT function_id, start_ms AS t, 1 AS step FROM inv
    UNION ALL
    SELECT function_id, end_ms AS t, -1 AS step FROM inv
  ), running AS (
    SELECT function_id, sum(step) OVER (PARTITION BY function_id ORDER BY t, step
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS busy
    FROM edges
  ), peaks AS (
    SELECT function_id, max(busy) AS peak FROM running GROUP BY function_id
  ), totals AS (
    SELECT function_id, count(*) AS requests, sum(billed_ms * memory_mb) AS mb_ms,
      max(memory_mb) AS memory_mb
    FROM inv GROUP BY function_id
  )
  SELECT totals.function_id, requests, mb_ms, memory_mb, peak
  FROM totals JOIN peaks ON peaks.function_id = totals.function_id
  ORDER BY totals.function_id"""
    return query, params


def usage_from_row(row: Sequence[Any]) -> FunctionUsage:
    """Build a `FunctionUsage` from a `usage_query` row (PostgreSQL sums come as Decimal)."""
    return FunctionUsage(
        function_id=row[0],
        requests=int(row[1]),
        billed_mb_ms=int(row[2]),
        memory_mb=int(row[3]),
        peak_concurrency=max(1, int(row[4])),
    )


def stats_query(
    *,
    ph: str,  # the backend's placeholder: "?" or "%s"
    int_ph: str,  # the placeholder for a bigint, e.g. "%s::bigint"
    since_ms: int,
    until_ms: int,
    step_ms: int,
    bounds_ms: Sequence[float],
    function_id: str | None,
) -> tuple[str, list[Any]]:
    """The SELECT for `TelemetryStore.invocation_stats`: one row per (function, bucket, bin)
    with its counts. The bins are a CASE over the bounds (plain SQL on both backends, no math
    functions); the bounds are floats written into the statement, so a given set of bounds is
    one constant statement."""
    if step_ms <= 0:
        raise ValueError(f"step_ms: expected a positive number of milliseconds, got {step_ms}")
    bins = " ".join(f"WHEN duration_ms <= {float(b)!r} THEN {i}" for i, b in enumerate(bounds_ms))
    where = [f"start_ms >= {int_ph}", f"start_ms < {int_ph}"]
    params: list[Any] = [step_ms, step_ms, since_ms, until_ms]
    if function_id is not None:
        where.append(f"function_id = {ph}")
        params.append(function_id)
    query = (
        f"SELECT function_id, (start_ms / {int_ph}) * {int_ph} AS bucket,"
        f" CASE WHEN status = 'throttled' THEN -1 {bins} ELSE {len(bounds_ms)} END AS bin,"
        " count(*),"
        " sum(CASE WHEN status NOT IN ('ok', 'throttled') THEN 1 ELSE 0 END),"
        " sum(CASE WHEN status = 'throttled' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN cold THEN 1 ELSE 0 END)"
        f" FROM invocations{_where(where)} GROUP BY 1, 2, 3"
    )
    return query, params


def stats_from_row(row: Sequence[Any]) -> StatsRow:
    """Build a `StatsRow` from a row of `stats_query`."""
    return StatsRow(
        function_id=row[0],
        bucket_ms=int(row[1]),
        bin=int(row[2]),
        requests=int(row[3]),
        errors=int(row[4]),
        throttles=int(row[5]),
        cold_starts=int(row[6]),
    )


def _where(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
