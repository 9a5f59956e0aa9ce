"""The SQLite backend: the embedded default store, one file under `APP_DIR/.lamina/`.

Every call runs on one dedicated thread that owns the store's connection, so calls are async for
the caller and serialized for SQLite; reports (`usage`) read on a second connection and thread,
and invocation records and log lines are inserted by a child process (`lamina.store._writer`),
started at the first write. Writes use `BEGIN IMMEDIATE`: the write lock is
taken before anything is read, so two processes sharing the file never claim the same message
and never fail with a stale snapshot; the other side waits up to `busy_timeout_ms`.

Durability. The journal is WAL. The `sync` option chooses when a commit is fsync'd:
- `"enqueue"` (default): enqueue commits run with `synchronous=FULL`, everything else with
  `NORMAL`. An acknowledged enqueue survives a process crash (SIGKILL) *and* an OS crash or
  power loss. Claims, acks, releases, moves and schedule ticks survive a process crash; a power
  loss may roll back the last few of them, which only leads to a redelivery (or a repeated
  tick), never to a lost message: at-least-once holds. Because the WAL is appended in order,
  an fsync'd enqueue also makes every earlier commit durable.
- `"full"`: every commit is fsync'd.
- `"normal"`: no commit is fsync'd: survives SIGKILL of the process, not a power loss.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from lamina.errors import DuplicateMessage, StoreError, StoreUnavailable
from lamina.store import _apikeys, _migrations, _versions
from lamina.store._rows import (
    COLUMNS,
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
    stats_from_row,
    stats_query,
    usage_from_row,
    usage_query,
)
from lamina.store._writer import TelemetryWriter, pack_rows
from lamina.store.types import (
    AliasRecord,
    ApiKey,
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

__all__ = ["SqliteStore", "SyncMode"]

log = logging.getLogger(__name__)

SyncMode = Literal["enqueue", "full", "normal"]
_T = TypeVar("_T")
_COLS = ", ".join(COLUMNS)
_PAGE_SIZE = 16384  # bytes, for new databases (see `_open_once`)

_INSERT = (
    "INSERT INTO messages (queue, id, body, attributes, created_ms, visible_ms)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_CLAIM = f"""UPDATE messages SET
    receive_count = receive_count + 1,
    first_received_ms = COALESCE(first_received_ms, :now),
    lease_token = lower(hex(randomblob(16))),
    visible_ms = :now + :lease
  WHERE seq IN (SELECT seq FROM messages WHERE queue = :queue AND visible_ms <= :now
                ORDER BY visible_ms, seq LIMIT :n)
  RETURNING {_COLS}"""
_ACK = "DELETE FROM messages WHERE queue = ? AND id = ? AND lease_token = ?"
_EXTEND = "UPDATE messages SET visible_ms = ? WHERE queue = ? AND id = ? AND lease_token = ?"
_RELEASE = """UPDATE messages SET visible_ms = ?, lease_token = NULL,
    last_error = COALESCE(?, last_error)
  WHERE queue = ? AND id = ? AND lease_token = ?"""
_MOVE = """UPDATE messages SET queue = ?, visible_ms = ?, lease_token = NULL,
    last_error = COALESCE(?, last_error)
  WHERE queue = ? AND id = ? AND lease_token = ?"""
_PEEK = f"SELECT {_COLS} FROM messages WHERE queue = ? ORDER BY created_ms, seq LIMIT ? OFFSET ?"
_GET = f"SELECT {_COLS} FROM messages WHERE queue = ? AND id = ?"
_EXISTS = "SELECT 1 FROM messages WHERE queue = ? AND id = ?"
_DELETE = "DELETE FROM messages WHERE queue = ? AND id = ?"
_PURGE = "DELETE FROM messages WHERE queue = ?"
_STATS_ONE = """SELECT count(*), coalesce(sum(visible_ms <= ?), 0), min(created_ms)
  FROM messages WHERE queue = ?"""
_STATS_ALL = """SELECT queue, count(*), sum(visible_ms <= ?), min(created_ms)
  FROM messages GROUP BY queue ORDER BY queue"""
_CLAIM_TICK = "INSERT OR IGNORE INTO schedule_ticks (schedule_id, tick_ms, owner) VALUES (?, ?, ?)"
_LAST_TICK = "SELECT max(tick_ms) FROM schedule_ticks WHERE schedule_id = ?"


# Pruning deletes in chunks, one transaction each, so other calls run in between.
_PRUNE_CHUNK = 5_000
_PRUNE = (
    "DELETE FROM invocations WHERE id IN (SELECT id FROM invocations WHERE start_ms < ? LIMIT ?)",
    "DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE time_ms < ? LIMIT ?)",
)


@dataclass(slots=True)
class _Enqueue:
    rows: list[tuple[Any, ...]]
    done: asyncio.Future[None]


class SqliteStore:
    """`Store` on one SQLite file; construct cheaply, then `await open()` (or `async with`)."""

    def __init__(
        self,
        path: Path,
        *,
        sync: SyncMode = "enqueue",
        busy_timeout_ms: int = 10_000,  # how long a writer waits for another process's lock
        url: str | None = None,  # how the store was named, for error messages
    ) -> None:
        self.path = path
        self._writer: TelemetryWriter | None = None
        self.sync: SyncMode = sync
        self.busy_timeout_ms = busy_timeout_ms
        self.url = url or f"sqlite:///{path}"
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        # Group commit: enqueues that arrive while one commit is on disk share the next one.
        self._pending: list[_Enqueue] = []
        self._flusher: asyncio.Task[None] | None = None
        # Reports (`usage`) read on a connection and thread of their own, opened at first use:
        # WAL lets them run beside the store's thread, so a report over millions of records
        # never holds up enqueues, claims or the recorder.
        self._reports: ThreadPoolExecutor | None = None
        self._report_conn: sqlite3.Connection | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._thread is not None:
            return
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lamina-sqlite")
        try:
            applied = await self._call(self._open_sync, need_open=False)
        except BaseException:
            await self.close()
            raise
        # Records and log lines are inserted by a child process, started at the first write.
        self._writer = TelemetryWriter(
            str(self.path),
            busy_timeout_ms=self.busy_timeout_ms,
            synchronous=self._base_sync,
            url=self.url,
        )
        log.info(
            "store opened",
            extra={"store": self.url, "backend": "sqlite", "migrations_applied": applied},
        )

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.close()
        reports, self._reports = self._reports, None
        if reports is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(reports, self._close_report_sync)
            finally:
                reports.shutdown(wait=True)
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(thread, self._close_sync)
        finally:
            thread.shutdown(wait=True)

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
        if self._thread is None or self._conn is None:
            raise StoreError("the store is not open; call `await store.open()` first", url=self.url)
        entry = _Enqueue(rows, asyncio.get_running_loop().create_future())
        self._pending.append(entry)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        await entry.done
        return ids

    async def _flush(self) -> None:
        """Commit every pending enqueue, in as few transactions (and disk syncs) as possible.
        Each enqueue stays atomic on its own: a duplicate id fails that enqueue only."""
        while self._pending:
            batch, self._pending = self._pending, []

            try:
                outcomes = await self._transact(
                    functools.partial(self._insert_batch, batch), fsync=self.sync != "normal"
                )
            except BaseException as exc:
                for entry in batch:
                    if not entry.done.done():
                        entry.done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for entry, outcome in zip(batch, outcomes, strict=True):
                if outcome is None:
                    entry.done.set_result(None)
                else:
                    entry.done.set_exception(outcome)

    def _insert_batch(
        self, batch: list[_Enqueue], conn: sqlite3.Connection
    ) -> list[BaseException | None]:
        """Insert each enqueue under its own savepoint; what failed, or None, per enqueue."""
        outcomes: list[BaseException | None] = []
        for entry in batch:
            conn.execute("SAVEPOINT enqueue")
            try:
                conn.executemany(_INSERT, entry.rows)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO enqueue")
                outcomes.append(self._duplicate(conn, entry.rows))
            else:
                outcomes.append(None)
            conn.execute("RELEASE enqueue")
        return outcomes

    def _duplicate(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> BaseException:
        for row in rows:
            if conn.execute(_EXISTS, (row[0], row[1])).fetchone():
                return DuplicateMessage(url=self.url, queue=row[0], message_id=row[1])
        return StoreError("enqueue violated a constraint", url=self.url)

    async def claim(
        self, queue: str, *, max_messages: int, lease_ms: int, now_ms: int
    ) -> list[Message]:
        if max_messages <= 0:
            return []
        params = {"now": now_ms, "lease": lease_ms, "queue": queue, "n": max_messages}

        def run(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(_CLAIM, params).fetchall()

        rows = await self._transact(run)
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

        def run(conn: sqlite3.Connection) -> int:
            try:
                return conn.execute(_MOVE, params).rowcount
            except sqlite3.IntegrityError:
                raise DuplicateMessage(
                    url=self.url, queue=to_queue, message_id=message_id
                ) from None

        return await self._transact(run) == 1

    async def peek(self, queue: str, *, limit: int = 100, offset: int = 0) -> list[Message]:
        rows = await self._call(self._read, _PEEK, (queue, limit, offset))
        return [message_from_row(row) for row in rows]

    async def get(self, queue: str, message_id: str) -> Message | None:
        rows = await self._call(self._read, _GET, (queue, message_id))
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

        def run() -> list[QueueStats]:
            conn = self._connection()
            if queues is None:
                return [
                    QueueStats(queue=q, depth=d, visible=v, oldest_created_ms=o)
                    for q, d, v, o in conn.execute(_STATS_ALL, (now,))
                ]
            result = []
            for q in queues:
                d, v, o = conn.execute(_STATS_ONE, (now, q)).fetchone()
                result.append(QueueStats(queue=q, depth=d, visible=v, oldest_created_ms=o))
            return result

        return await self._call(run)

    # -- schedules ---------------------------------------------------------------------------

    async def claim_tick(self, schedule_id: str, tick_ms: int, *, owner: str) -> bool:
        return await self._change(_CLAIM_TICK, (schedule_id, tick_ms, owner)) == 1

    async def last_tick(self, schedule_id: str) -> int | None:
        rows = await self._call(self._read, _LAST_TICK, (schedule_id,))
        value: int | None = rows[0][0]
        return value

    # -- telemetry ---------------------------------------------------------------------------

    async def add_invocations(self, records: Sequence[InvocationRecord]) -> None:
        await self.add_invocation_rows([invocation_row(r) for r in records])

    async def add_invocation_rows(self, rows: Sequence[InvocationRow]) -> None:
        if rows:
            await self.add_packed("invocations", [pack_rows(rows)])

    def pack_rows(self, table: TelemetryTable, rows: Sequence[Sequence[Any]]) -> PackedRows:
        """`rows` as a JSON array, the form the telemetry writer process takes them in."""
        return pack_rows(rows)

    async def add_packed(self, table: TelemetryTable, packs: Sequence[PackedRows]) -> None:
        """Insert the packs' rows in one transaction (`synchronous=NORMAL` unless
        `sync="full"`: telemetry is not an accepted event, a power loss may drop the last
        batches). For log lines, `seq` is the AUTOINCREMENT rowid, taken under the database's
        write lock and committed before the next writer (in any process) can take it: a
        reader that sees seq N already sees every line below N, so `after_seq` never skips a
        line."""
        if packs:
            await self._telemetry().write(table, packs)

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
            ph="?",
            int_ph="?",
            function_id=function_id,
            request_id=request_id,
            trace_id=trace_id,
            status=status,
            since_ms=since_ms,
            before_ms=before_ms,
            before_seq=before_seq,
            limit=limit,
        )
        return [invocation_from_row(row) for row in await self._call(self._read, query, params)]

    async def usage(
        self, *, since_ms: int, until_ms: int, function_id: str | None = None
    ) -> list[FunctionUsage]:
        """Per function, what the invocations that started in [since_ms, until_ms) used
        (CAST truncates toward zero: floor, as durations are never negative)."""
        query, params = usage_query(
            ph="?",
            int_ph="?",
            floor_ms="CAST(duration_ms AS INTEGER)",
            since_ms=since_ms,
            until_ms=until_ms,
            function_id=function_id,
        )
        return [usage_from_row(row) for row in await self._report(query, params)]

    async def add_logs(self, lines: Sequence[LogLine]) -> None:
        if lines:
            await self.add_packed("logs", [pack_rows([log_row(line) for line in lines])])

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
            ph="?",
            int_ph="?",
            find="instr",
            function_id=function_id,
            request_id=request_id,
            since_ms=since_ms,
            grep=grep,
            after_seq=after_seq,
            limit=limit,
            newest=newest,
        )
        return [log_from_row(row) for row in await self._call(self._read, query, params)]

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
            ph="?",
            int_ph="?",
            since_ms=since_ms,
            until_ms=until_ms,
            step_ms=step_ms,
            bounds_ms=bounds_ms,
            function_id=function_id,
        )
        return [stats_from_row(row) for row in await self._call(self._read, query, params)]

    async def prune_telemetry(self, *, before_ms: int) -> int:
        """Delete records and lines older than `before_ms`, a few thousand per transaction so
        that recording and queries go on in between; how many were deleted."""
        deleted = 0
        for statement in _PRUNE:
            while True:
                count = await self._change(statement, (before_ms, _PRUNE_CHUNK))
                deleted += count
                if count < _PRUNE_CHUNK:
                    break
        return deleted

    # -- API keys ----------------------------------------------------------------------------

    async def add_api_key(self, key: ApiKey) -> None:
        await self._change(_apikeys.ADD_KEY, _apikeys.key_row(key))

    async def api_keys(self) -> list[ApiKey]:
        rows = await self._call(self._read, _apikeys.KEYS, ())
        return [_apikeys.key_from_row(row) for row in rows]

    async def revoke_api_key(self, key_id: str, *, now_ms: int) -> bool:
        return await self._change(_apikeys.REVOKE_KEY, (now_ms, key_id)) == 1

    async def add_api_key_usage(self, day: str, counts: Mapping[str, int]) -> None:
        rows = [(key_id, day, count) for key_id, count in counts.items() if count]
        if rows:
            await self._transact(lambda conn: conn.executemany(_apikeys.ADD_USAGE, rows))

    async def api_key_usage(self, day: str) -> dict[str, int]:
        rows = await self._call(self._read, _apikeys.USAGE, (day,))
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
        def run(conn: sqlite3.Connection) -> int:
            conn.executemany(_versions.ADD_VERSION, [_versions.version_row(v) for v in versions])
            conn.executemany(_versions.SET_ALIAS, [_versions.alias_row(a) for a in aliases])
            cur = conn.execute(_versions.ADD_DEPLOY, (bundle, app, now_ms))
            return int(cur.lastrowid or 0)

        return await self._transact(run)

    async def last_deploy(self) -> DeployRecord | None:
        rows = await self._call(self._read, _versions.LAST_DEPLOY, ())
        return _versions.deploy_from_row(rows[0]) if rows else None

    async def recent_deploys(self, limit: int) -> list[DeployRecord]:
        rows = await self._call(self._read, _versions.RECENT_DEPLOYS, (limit,))
        return [_versions.deploy_from_row(r) for r in rows]

    async def function_versions(self, function_id: str | None = None) -> list[FunctionVersion]:
        query = _versions.where_function(_versions.VERSIONS, function_id, "function_id, version")
        return [_versions.version_from_row(r) for r in await self._call(self._read, *query)]

    async def aliases(self, function_id: str | None = None) -> list[AliasRecord]:
        query = _versions.where_function(_versions.ALIASES, function_id, "function_id, name")
        return [_versions.alias_from_row(r) for r in await self._call(self._read, *query)]

    async def set_alias(self, alias: AliasRecord) -> None:
        await self._change(_versions.SET_ALIAS, _versions.alias_row(alias))

    async def delete_alias(self, function_id: str, name: str) -> bool:
        return await self._change(_versions.DELETE_ALIAS, (function_id, name)) == 1

    # -- on the store's thread ---------------------------------------------------------------

    async def _call(self, fn: Callable[..., _T], *args: Any, need_open: bool = True) -> _T:
        """Run `fn(*args)` on the store's thread, translating database and OS errors."""
        thread = self._thread
        if thread is None or (need_open and self._conn is None):
            raise StoreError("the store is not open; call `await store.open()` first", url=self.url)
        try:
            return await asyncio.get_running_loop().run_in_executor(thread, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}", url=self.url) from exc

    async def _report(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one read on the reports' own connection and thread (see `__init__`)."""
        if self._thread is None or self._conn is None:
            raise StoreError("the store is not open; call `await store.open()` first", url=self.url)
        if self._reports is None:
            self._reports = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="lamina-sqlite-reports"
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._reports, self._report_sync, sql, params
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}", url=self.url) from exc

    def _report_sync(self, sql: str, params: Sequence[Any]) -> list[Any]:
        if self._report_conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA query_only = ON")
            self._report_conn = conn
        return self._report_conn.execute(sql, params).fetchall()

    def _close_report_sync(self) -> None:
        conn, self._report_conn = self._report_conn, None
        if conn is not None:
            conn.close()

    async def _transact(self, fn: Callable[[sqlite3.Connection], _T], *, fsync: bool = False) -> _T:
        """Run `fn(connection)` in a write transaction on the store's thread."""
        return await self._call(functools.partial(self._write, fn, fsync))

    def _telemetry(self) -> TelemetryWriter:
        if self._writer is None:
            raise StoreError("the store is not open; call `await store.open()` first", url=self.url)
        return self._writer

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:  # closed while the call was queued
            raise StoreError("the store was closed", url=self.url)
        return self._conn

    def _open_sync(self) -> int:
        """Connect, switch to WAL and migrate. Switching a new file to WAL can fail with "database
        is locked" without SQLite's busy handler waiting, when several processes open the same
        new store at once: such attempts are retried until busy_timeout_ms has passed."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        delay = 0.005
        while True:
            try:
                return self._open_once()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)  # on the store's own thread, never the event loop's
            delay = min(delay * 2, 0.1)

    def _open_once(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit; transactions are explicit
            cached_statements=64,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            # A new database gets 16 KiB pages (no effect on an existing one): telemetry rows
            # are written a batch at a time, and larger pages mean fewer WAL frames per batch.
            conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot switch the journal to WAL (got {mode!r})", url=self.url)
            conn.execute(f"PRAGMA synchronous = {self._base_sync}")
            applied = _migrate(conn, self.url)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return applied

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @property
    def _base_sync(self) -> str:
        return "FULL" if self.sync == "full" else "NORMAL"

    def _write(self, fn: Callable[[sqlite3.Connection], _T], fsync: bool = False) -> _T:
        """Run `fn` in a `BEGIN IMMEDIATE` transaction; with `fsync`, commit with FULL sync."""
        conn = self._connection()
        raise_sync = fsync and self.sync == "enqueue"
        if raise_sync:
            conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result
        finally:
            if raise_sync:
                conn.execute("PRAGMA synchronous = NORMAL")

    async def _change(self, sql: str, params: Sequence[Any]) -> int:
        """Run one write statement; returns how many rows it changed."""

        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(sql, params).rowcount

        return await self._transact(run)

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._connection().execute(sql, params).fetchall()


def _migrate(conn: sqlite3.Connection, url: str) -> int:
    """Apply pending migrations under the write lock; returns how many were applied."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_migrations.VERSION_TABLE}"
            " (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)"
        )
        current = int(
            conn.execute(
                f"SELECT coalesce(max(version), 0) FROM {_migrations.VERSION_TABLE}"
            ).fetchone()[0]
        )
        known = len(_migrations.SQLITE)
        if current > known:
            raise StoreError(
                f"the schema is at version {current} but this Lamina knows only up to {known};"
                " upgrade Lamina",
                url=url,
            )
        for version in range(current + 1, known + 1):
            for statement in _migrations.SQLITE[version - 1]:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {_migrations.VERSION_TABLE} (version, applied_ms) VALUES (?, ?)",
                (version, int(time.time() * 1000)),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return known - current
