"""The PostgreSQL backend: the shared store when several machines (or processes) run Lamina.

psycopg 3 in async mode with one `AsyncConnectionPool` per store; connections are autocommit and
statements are constant strings, so psycopg prepares them server-side after a few uses. Claims
are one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)` statement: concurrent claimers skip
each other's rows instead of waiting, and never get the same message. Schedule ticks are
`INSERT ... ON CONFLICT DO NOTHING`: one caller wins per tick. Needs PostgreSQL 13 or newer
(`gen_random_uuid()`).

Telemetry batches are written with `COPY`, one transaction per batch. Log lines take a
transaction-level advisory lock (one per schema) before they draw their `seq`: identity values
are handed out when drawn but become visible at commit, so without it a batch that drew seq 5
could commit after one that drew seq 6 had already been read past with `after_seq=6`, and
`--follow` would skip it. With the lock, log batches commit one at a time in seq order (across
every process sharing the schema), and a reader that sees seq N sees every line below N.

URL: a libpq URL (`postgresql://USER[:PASSWORD]@HOST[:PORT]/DB?...`) plus Lamina's own query
parameters, which are removed before connecting:
- `lamina_schema=NAME`: keep every table in schema NAME (created if missing), e.g. one schema
  per test or per app sharing a database;
- `lamina_pool_min=N`, `lamina_pool_max=N`: pool size bounds (defaults 1 and 10).
Durability is the server's: a committed enqueue is as durable as the server's `fsync` and
`synchronous_commit` settings make it (both on by default).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from lamina.errors import DuplicateMessage, StoreError, StoreUnavailable
from lamina.store import _apikeys, _migrations, _planes, _versions
from lamina.store._rows import (
    COLUMNS,
    INVOCATION_COLUMNS,
    LOG_COLUMNS,
    dump_json,
    first_duplicate,
    invocation_from_row,
    invocation_row,
    invocations_query,
    log_from_row,
    log_row,
    logs_query,
    message_from_row,
    new_id,
    redact,
    stats_from_row,
    stats_query,
    usage_from_row,
    usage_query,
)
from lamina.store.types import (
    AliasRecord,
    ApiKey,
    ControlPlane,
    DeployRecord,
    FunctionUsage,
    FunctionVersion,
    InvocationRecord,
    InvocationRow,
    LogLine,
    Message,
    NewMessage,
    PackedRows,
    QueueStats,
    StatsRow,
    TelemetryTable,
)

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)

_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_CONNECT_TIMEOUT_S = 5  # used when the URL sets no connect_timeout
_POOL_OPEN_TIMEOUT_S = 10.0
_SELECT_COLS = ", ".join(f"{c}::text" if c in ("attributes", "last_error") else c for c in COLUMNS)
_RETURNING_COLS = ", ".join(
    f"m.{c}::text" if c in ("attributes", "last_error") else f"m.{c}" for c in COLUMNS
)

_INSERT = (
    "INSERT INTO messages (queue, id, body, attributes, created_ms, visible_ms)"
    " VALUES (%s, %s, %s, %s::jsonb, %s, %s)"
)
_CLAIM = f"""UPDATE messages AS m SET
    receive_count = m.receive_count + 1,
    first_received_ms = COALESCE(m.first_received_ms, %(now)s::bigint),
    lease_token = gen_random_uuid()::text,
    visible_ms = %(now)s::bigint + %(lease)s::bigint
  FROM (SELECT seq FROM messages WHERE queue = %(queue)s AND visible_ms <= %(now)s::bigint
        ORDER BY visible_ms, seq LIMIT %(n)s FOR UPDATE SKIP LOCKED) AS c
  WHERE m.seq = c.seq
  RETURNING {_RETURNING_COLS}"""
_ACK = "DELETE FROM messages WHERE queue = %s AND id = %s AND lease_token = %s"
_EXTEND = "UPDATE messages SET visible_ms = %s WHERE queue = %s AND id = %s AND lease_token = %s"
_RELEASE = """UPDATE messages SET visible_ms = %s, lease_token = NULL,
    last_error = COALESCE(%s::jsonb, last_error)
  WHERE queue = %s AND id = %s AND lease_token = %s"""
_MOVE = """UPDATE messages SET queue = %s, visible_ms = %s, lease_token = NULL,
    last_error = COALESCE(%s::jsonb, last_error)
  WHERE queue = %s AND id = %s AND lease_token = %s"""
_PEEK = f"""SELECT {_SELECT_COLS} FROM messages WHERE queue = %s
  ORDER BY created_ms, seq LIMIT %s OFFSET %s"""
_GET = f"SELECT {_SELECT_COLS} FROM messages WHERE queue = %s AND id = %s"
_EXISTS = "SELECT 1 FROM messages WHERE queue = %s AND id = %s"
_DELETE = "DELETE FROM messages WHERE queue = %s AND id = %s"
_PURGE = "DELETE FROM messages WHERE queue = %s"
_STATS_SOME = """SELECT queue, count(*), count(*) FILTER (WHERE visible_ms <= %s), min(created_ms)
  FROM messages WHERE queue = ANY(%s) GROUP BY queue"""
_STATS_ALL = """SELECT queue, count(*), count(*) FILTER (WHERE visible_ms <= %s), min(created_ms)
  FROM messages GROUP BY queue ORDER BY queue"""
_CLAIM_TICK = """INSERT INTO schedule_ticks (schedule_id, tick_ms, owner) VALUES (%s, %s, %s)
  ON CONFLICT DO NOTHING"""
_LAST_TICK = "SELECT max(tick_ms) FROM schedule_ticks WHERE schedule_id = %s"
_COPY = {
    "invocations": f"COPY invocations ({', '.join(INVOCATION_COLUMNS)}) FROM STDIN",
    "logs": f"COPY logs ({', '.join(LOG_COLUMNS)}) FROM STDIN",
}
_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_PRUNE = (
    "DELETE FROM invocations WHERE start_ms < %s::bigint",
    "DELETE FROM logs WHERE time_ms < %s::bigint",
)


class PostgresStore:
    """`Store` on a PostgreSQL database; construct cheaply, then `await open()` or `async with`."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,  # keep the tables in this schema (created at open)
        min_size: int = 1,  # pooled connections kept open, >= 0
        max_size: int = 10,  # pooled connections at most, >= max(1, min_size)
        url: str | None = None,  # how the store was named, for error messages (no password)
    ) -> None:
        if schema is not None and not _SCHEMA_RE.fullmatch(schema):
            raise StoreError(
                f"lamina_schema: expected a plain identifier (letters, digits, _), got {schema!r}",
                url=url or "",
            )
        if min_size < 0 or max_size < max(1, min_size):
            raise StoreError(
                f"expected 0 <= lamina_pool_min <= lamina_pool_max and lamina_pool_max >= 1,"
                f" got {min_size} and {max_size}",
                url=url or "",
            )
        self.schema = schema
        self.min_size = min_size
        self.max_size = max_size
        self.url = url or "postgresql://"
        self._conninfo = _with_defaults(conninfo, schema, self.url)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._logs_lock = _lock_id(f"lamina.store.logs:{schema or ''}")

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Parse a `postgresql://` URL with Lamina's `lamina_*` query parameters."""
        shown = redact(url)
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise StoreError(f"expected postgresql://USER@HOST:PORT/DB: {exc}", url=shown) from exc
        ours: dict[str, str] = {}
        theirs: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key.startswith("lamina_"):
                ours[key] = value
            else:
                theirs.append((key, value))
        unknown = sorted(set(ours) - {"lamina_schema", "lamina_pool_min", "lamina_pool_max"})
        if unknown:
            raise StoreError(
                f"unknown query parameter {unknown[0]!r}; expected lamina_schema,"
                " lamina_pool_min or lamina_pool_max (or a libpq parameter)",
                url=shown,
            )
        sizes: dict[str, int] = {}
        for key, default in (("lamina_pool_min", 1), ("lamina_pool_max", 10)):
            try:
                sizes[key] = int(ours.get(key, default))
            except ValueError:
                raise StoreError(
                    f"{key}: expected an integer, got {ours[key]!r}", url=shown
                ) from None
        conninfo = urlunsplit(parts._replace(query=urlencode(theirs)))
        return cls(
            conninfo,
            schema=ours.get("lamina_schema") or None,
            min_size=sizes["lamina_pool_min"],
            max_size=sizes["lamina_pool_max"],
            url=shown,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            async with conn:
                applied = await self._migrate(conn)
            pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
                self._conninfo,
                min_size=self.min_size,
                max_size=self.max_size,
                kwargs={"autocommit": True},
                open=False,
                name=f"lamina-store-{self.schema or 'public'}",
            )
            try:
                await pool.open(wait=True, timeout=_POOL_OPEN_TIMEOUT_S)
            except BaseException:
                await pool.close()
                raise
        except (psycopg.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot connect: {str(exc).strip()}", url=self.url) from exc
        self._pool = pool
        log.info(
            "store opened",
            extra={"store": self.url, "backend": "postgres", "migrations_applied": applied},
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- queues ------------------------------------------------------------------------------

    async def enqueue(self, messages: Sequence[NewMessage], *, now_ms: int) -> list[str]:
        if not messages:
            return []
        ids = [m.message_id or new_id() for m in messages]
        dup = first_duplicate(messages, ids)
        if dup is not None:
            raise DuplicateMessage(url=self.url, queue=dup[0], message_id=dup[1])
        rows = [
            (m.queue, i, m.body, dump_json(m.attributes), now_ms, now_ms + max(0, m.delay_ms))
            for m, i in zip(messages, ids, strict=True)
        ]
        async with self._connection() as conn:
            try:
                async with conn.transaction(), conn.cursor() as cur:
                    await cur.executemany(_INSERT, rows)
            except psycopg.errors.UniqueViolation:
                for m, i in zip(messages, ids, strict=True):
                    cur = await conn.execute(_EXISTS, (m.queue, i))
                    if await cur.fetchone():
                        raise DuplicateMessage(url=self.url, queue=m.queue, message_id=i) from None
                raise
        return ids

    async def claim(
        self, queue: str, *, max_messages: int, lease_ms: int, now_ms: int
    ) -> list[Message]:
        if max_messages <= 0:
            return []
        params = {"now": now_ms, "lease": lease_ms, "queue": queue, "n": max_messages}
        async with self._connection() as conn:
            cur = await conn.execute(_CLAIM, params)
            rows = await cur.fetchall()
        rows.sort(key=lambda row: row[0])  # oldest (lowest seq) first
        return [message_from_row(row) for row in rows]

    async def ack(self, queue: str, message_id: str, lease_token: str) -> bool:
        return await self._change(_ACK, (queue, message_id, lease_token)) == 1

    async def extend(
        self, queue: str, message_id: str, lease_token: str, *, lease_ms: int, now_ms: int
    ) -> bool:
        params = (now_ms + max(0, lease_ms), queue, message_id, lease_token)
        return await self._change(_EXTEND, params) == 1

    async def release(
        self,
        queue: str,
        message_id: str,
        lease_token: str,
        *,
        delay_ms: int,
        now_ms: int,
        error: Mapping[str, Any] | None = None,
    ) -> bool:
        params = (now_ms + max(0, delay_ms), dump_json(error), queue, message_id, lease_token)
        return await self._change(_RELEASE, params) == 1

    async def move(
        self,
        queue: str,
        message_id: str,
        lease_token: str,
        *,
        to_queue: str,
        now_ms: int,
        error: Mapping[str, Any] | None = None,
    ) -> bool:
        params = (to_queue, now_ms, dump_json(error), queue, message_id, lease_token)
        async with self._connection() as conn:
            try:
                cur = await conn.execute(_MOVE, params)
            except psycopg.errors.UniqueViolation:
                raise DuplicateMessage(
                    url=self.url, queue=to_queue, message_id=message_id
                ) from None
            return cur.rowcount == 1

    async def peek(self, queue: str, *, limit: int = 100, offset: int = 0) -> list[Message]:
        rows = await self._fetch(_PEEK, (queue, limit, offset))
        return [message_from_row(row) for row in rows]

    async def get(self, queue: str, message_id: str) -> Message | None:
        rows = await self._fetch(_GET, (queue, message_id))
        return message_from_row(rows[0]) if rows else None

    async def delete(self, queue: str, message_id: str) -> bool:
        return await self._change(_DELETE, (queue, message_id)) == 1

    async def purge(self, queue: str) -> int:
        return await self._change(_PURGE, (queue,))

    async def stats(
        self, queues: Sequence[str] | None = None, *, now_ms: int | None = None
    ) -> list[QueueStats]:
        """Depth per queue; `visible` counts messages claimable at `now_ms` (default: the wall
        clock). With `queues`, one entry per named queue in that order, empty ones included;
        without, every queue that holds a message, sorted by name."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if queues is None:
            rows = await self._fetch(_STATS_ALL, (now,))
            return [
                QueueStats(queue=q, depth=d, visible=v, oldest_created_ms=o) for q, d, v, o in rows
            ]
        found = {row[0]: row for row in await self._fetch(_STATS_SOME, (now, list(queues)))}
        return [
            QueueStats(
                queue=q, depth=found[q][1], visible=found[q][2], oldest_created_ms=found[q][3]
            )
            if q in found
            else QueueStats(queue=q, depth=0, visible=0, oldest_created_ms=None)
            for q in queues
        ]

    # -- schedules ---------------------------------------------------------------------------

    async def claim_tick(self, schedule_id: str, tick_ms: int, *, owner: str) -> bool:
        return await self._change(_CLAIM_TICK, (schedule_id, tick_ms, owner)) == 1

    async def last_tick(self, schedule_id: str) -> int | None:
        rows = await self._fetch(_LAST_TICK, (schedule_id,))
        value: int | None = rows[0][0]
        return value

    # -- telemetry ---------------------------------------------------------------------------

    async def add_invocations(self, records: Sequence[InvocationRecord]) -> None:
        await self.add_invocation_rows([invocation_row(r) for r in records])

    async def add_invocation_rows(self, rows: Sequence[InvocationRow]) -> None:
        await self.add_packed("invocations", [rows])

    def pack_rows(self, table: TelemetryTable, rows: Sequence[Sequence[Any]]) -> PackedRows:
        """`rows` themselves: COPY takes them as they are."""
        return rows

    async def add_packed(self, table: TelemetryTable, packs: Sequence[PackedRows]) -> None:
        """Insert the packs' rows in one transaction, in order; log lines under the schema's
        log lock (see the module docstring: this is what keeps `after_seq` from skipping
        lines)."""
        if not any(packs):
            return
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            if table == "logs":
                await cur.execute(_LOCK, (self._logs_lock,))
            async with cur.copy(_COPY[table]) as copy:
                for rows in packs:
                    for row in rows:
                        await copy.write_row(row)

    async def invocations(
        self,
        *,
        function_id: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        status: str | None = None,
        since_ms: int | None = None,
        before_ms: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[InvocationRecord]:
        if limit <= 0:
            return []
        query, params = invocations_query(
            ph="%s",
            int_ph="%s::bigint",
            function_id=function_id,
            request_id=request_id,
            trace_id=trace_id,
            status=status,
            since_ms=since_ms,
            before_ms=before_ms,
            before_seq=before_seq,
            limit=limit,
        )
        return [invocation_from_row(row) for row in await self._fetch(query, params)]

    async def usage(
        self, *, since_ms: int, until_ms: int, function_id: str | None = None
    ) -> list[FunctionUsage]:
        """Per function, what the invocations that started in [since_ms, until_ms) used
        (floor() first: a cast to bigint alone would round)."""
        query, params = usage_query(
            ph="%s",
            int_ph="%s::bigint",
            floor_ms="floor(duration_ms)::bigint",
            since_ms=since_ms,
            until_ms=until_ms,
            function_id=function_id,
        )
        return [usage_from_row(row) for row in await self._fetch(query, params)]

    async def add_logs(self, lines: Sequence[LogLine]) -> None:
        """PostgreSQL text cannot hold NUL: a NUL in a message is stored as U+FFFD
        (`storable_text`, in `log_row`)."""
        await self.add_packed("logs", [[log_row(line) for line in lines]])

    async def logs(
        self,
        *,
        function_id: str | None = None,
        request_id: str | None = None,
        since_ms: int | None = None,
        grep: str | None = None,
        after_seq: int | None = None,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[LogLine]:
        if limit <= 0:
            return []
        query, params = logs_query(
            ph="%s",
            int_ph="%s::bigint",
            find="strpos",
            function_id=function_id,
            request_id=request_id,
            since_ms=since_ms,
            grep=grep,
            after_seq=after_seq,
            limit=limit,
            newest=newest,
        )
        return [log_from_row(row) for row in await self._fetch(query, params)]

    async def invocation_stats(
        self,
        *,
        since_ms: int,
        until_ms: int,
        step_ms: int,
        bounds_ms: Sequence[float],
        function_id: str | None = None,
    ) -> list[StatsRow]:
        query, params = stats_query(
            ph="%s",
            int_ph="%s::bigint",
            since_ms=since_ms,
            until_ms=until_ms,
            step_ms=step_ms,
            bounds_ms=bounds_ms,
            function_id=function_id,
        )
        return [stats_from_row(row) for row in await self._fetch(query, params)]

    async def prune_telemetry(self, *, before_ms: int) -> int:
        return sum([await self._change(statement, (before_ms,)) for statement in _PRUNE])

    # -- API keys ----------------------------------------------------------------------------

    async def add_api_key(self, key: ApiKey) -> None:
        await self._change(_apikeys.pg(_apikeys.ADD_KEY), _apikeys.key_row(key))

    async def api_keys(self) -> list[ApiKey]:
        rows = await self._fetch(_apikeys.pg(_apikeys.KEYS), ())
        return [_apikeys.key_from_row(row) for row in rows]

    async def revoke_api_key(self, key_id: str, *, now_ms: int) -> bool:
        return await self._change(_apikeys.pg(_apikeys.REVOKE_KEY), (now_ms, key_id)) == 1

    async def add_api_key_usage(self, day: str, counts: Mapping[str, int]) -> None:
        rows = [(key_id, day, count) for key_id, count in counts.items() if count]
        if rows:
            async with self._connection() as conn, conn.cursor() as cur:
                await cur.executemany(_apikeys.pg(_apikeys.ADD_USAGE), rows)

    async def api_key_usage(self, day: str) -> dict[str, int]:
        rows = await self._fetch(_apikeys.pg(_apikeys.USAGE), (day,))
        return {key_id: int(count) for key_id, count in rows}

    # -- deploys, versions and aliases (store/_versions.py) ---------------------------------

    async def add_deploy(
        self,
        *,
        bundle: str,
        app: str,
        versions: Sequence[FunctionVersion],
        aliases: Sequence[AliasRecord],
        now_ms: int,
    ) -> int:
        pg = _apikeys.pg
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            if versions:
                rows = [_versions.version_row(v) for v in versions]
                await cur.executemany(pg(_versions.ADD_VERSION), rows)
            if aliases:
                rows = [_versions.alias_row(a) for a in aliases]
                await cur.executemany(pg(_versions.SET_ALIAS), rows)
            await cur.execute(pg(_versions.ADD_DEPLOY) + " RETURNING id", (bundle, app, now_ms))
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async def last_deploy(self) -> DeployRecord | None:
        rows = await self._fetch(_versions.LAST_DEPLOY, ())
        return _versions.deploy_from_row(rows[0]) if rows else None

    async def recent_deploys(self, limit: int) -> list[DeployRecord]:
        rows = await self._fetch(_apikeys.pg(_versions.RECENT_DEPLOYS), (limit,))
        return [_versions.deploy_from_row(r) for r in rows]

    async def function_versions(self, function_id: str | None = None) -> list[FunctionVersion]:
        query, params = _versions.where_function(
            _versions.VERSIONS, function_id, "function_id, version"
        )
        rows = await self._fetch(_apikeys.pg(query), params)
        return [_versions.version_from_row(r) for r in rows]

    async def aliases(self, function_id: str | None = None) -> list[AliasRecord]:
        query, params = _versions.where_function(
            _versions.ALIASES, function_id, "function_id, name"
        )
        rows = await self._fetch(_apikeys.pg(query), params)
        return [_versions.alias_from_row(r) for r in rows]

    async def set_alias(self, alias: AliasRecord) -> None:
        await self._change(_apikeys.pg(_versions.SET_ALIAS), _versions.alias_row(alias))

    async def delete_alias(self, function_id: str, name: str) -> bool:
        deleted = await self._change(_apikeys.pg(_versions.DELETE_ALIAS), (function_id, name))
        return deleted == 1

    # -- control planes (`PlaneStore`; SQL in `_planes`) ---------------------------------------

    async def heartbeat_plane(
        self, plane: ControlPlane, lease_ids: Mapping[str, str], *, now_ms: int
    ) -> bool:
        async with self._connection() as conn:
            return await _planes.heartbeat(conn, plane, lease_ids, now_ms)

    async def acquire_instance_lease(
        self, plane_id: str, function_id: str, lease_id: str, *, max_instances: int, now_ms: int
    ) -> bool:
        async with self._connection() as conn:
            return await _planes.acquire(
                conn, self.schema or "", plane_id, function_id, lease_id, max_instances, now_ms
            )

    async def release_instance_lease(self, lease_id: str) -> None:
        async with self._connection() as conn:
            await _planes.release(conn, lease_id)

    async def drop_plane(self, plane_id: str) -> None:
        async with self._connection() as conn:
            await _planes.drop(conn, plane_id)

    async def control_planes(self, *, now_ms: int) -> list[tuple[ControlPlane, dict[str, int]]]:
        async with self._connection() as conn:
            return await _planes.control_planes(conn, now_ms)

    # -- helpers -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; database and OS errors become `StoreUnavailable`."""
        pool = self._pool
        if pool is None:
            raise StoreError("the store is not open; call `await store.open()` first", url=self.url)
        try:
            async with pool.connection() as conn:
                yield conn
        except (psycopg.Error, OSError) as exc:
            raise StoreUnavailable(
                f"{type(exc).__name__}: {str(exc).strip()}", url=self.url
            ) from exc

    async def _change(self, query: str, params: Sequence[Any]) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return cur.rowcount

    async def _fetch(self, query: str, params: Sequence[Any]) -> list[Any]:
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def _migrate(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Apply pending migrations in one transaction under an advisory lock per schema."""
        lock_id = _lock_id(f"lamina.store.migrate:{self.schema or ''}")
        version_table = sql.Identifier(_migrations.VERSION_TABLE)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id,))
            if self.schema is not None:
                await conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY,"
                    " applied_ms bigint NOT NULL)"
                ).format(version_table)
            )
            cur = await conn.execute(
                sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(version_table)
            )
            row = await cur.fetchone()
            current = int(row[0]) if row else 0
            known = len(_migrations.POSTGRES)
            if current > known:
                raise StoreError(
                    f"the schema is at version {current} but this Lamina knows only up to"
                    f" {known}; upgrade Lamina",
                    url=self.url,
                )
            for version in range(current + 1, known + 1):
                for statement in _migrations.POSTGRES[version - 1]:
                    await conn.execute(statement)
                await conn.execute(
                    sql.SQL("INSERT INTO {} (version, applied_ms) VALUES (%s, %s)").format(
                        version_table
                    ),
                    (version, int(time.time() * 1000)),
                )
        return known - current


def _lock_id(name: str) -> int:
    """A stable advisory-lock key (signed 64-bit) for `name`."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _with_defaults(conninfo: str, schema: str | None, shown: str) -> str:
    """`conninfo` with a connect timeout unless it has one, and `search_path` set to `schema`."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise StoreError(
            f"expected a libpq URL or connection string: {str(exc).strip()}", url=shown
        ) from exc
    params.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)
    if schema is not None:
        params["options"] = f"{params.get('options') or ''} -c search_path={schema}".strip()
    return make_conninfo("", **params)
