"""Service tables on SQLite: one file per service, one `WITHOUT ROWID` table per declared table.

    CREATE TABLE "orders" (pk TEXT, sk TEXT, doc TEXT,   -- encoded keys, the item as JSON
        expires REAL GENERATED ALWAYS AS (<the ttl attribute when it is a number>) VIRTUAL,
        PRIMARY KEY (pk, sk)) WITHOUT ROWID

Connections are autocommit and every call is one statement: SQLite takes the write lock
when a write statement starts, so a conditional write or an `add` is atomic across processes;
a writer waits up to `busy_timeout_ms` for another's lock. A `with lamina.sql()` block is one
`BEGIN IMMEDIATE` transaction on a pooled connection (`connection`): it takes the write lock
when it begins, so a read-then-write block never fails to upgrade its lock midway. WAL
journal, `synchronous=NORMAL`: a committed write survives a crash of any process; a power loss
may lose the last commits.
`_lamina_tables` remembers each table's key schema, so a changed key is refused at start.
Needs SQLite 3.35 or newer (RETURNING, generated columns).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lamina.errors import StoreUnavailable, TableError
from lamina.store._pool import Pool
from lamina.store.tables import Row, TableDef, Update, track

__all__ = ["SqliteTables"]

_T = TypeVar("_T")
_LIVE = "(expires IS NULL OR expires > ?)"
_META = "_lamina_tables"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _path(attribute: str) -> str:
    return f'$."{attribute}"'  # attribute names never hold '"' (manifest and check_attribute)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _expires(ttl: str | None) -> str:
    if ttl is None:
        return "NULL"
    p = _literal(_path(ttl))
    return f"CASE WHEN json_type(doc, {p}) IN ('integer', 'real') THEN json_extract(doc, {p}) END"


@dataclass(frozen=True, slots=True)
class _Sql:
    """The constant statements of one table."""

    get: str
    put: str
    put_if_absent: str
    delete: str
    scan_first: str
    scan_after: str
    count: str
    sweep: str

    @classmethod
    def of(cls, name: str) -> _Sql:
        t = _ident(name)
        insert = f"INSERT INTO {t} (pk, sk, doc) VALUES (?, ?, ?) ON CONFLICT (pk, sk) DO UPDATE"
        return cls(
            get=f"SELECT doc FROM {t} WHERE pk = ? AND sk = ? AND {_LIVE}",
            put=f"{insert} SET doc = excluded.doc",
            put_if_absent=(
                f"{insert} SET doc = excluded.doc"
                f" WHERE {t}.expires IS NOT NULL AND {t}.expires <= ?"
            ),
            delete=f"DELETE FROM {t} WHERE pk = ? AND sk = ? RETURNING expires",
            scan_first=f"SELECT pk, sk, doc FROM {t} WHERE {_LIVE} ORDER BY pk, sk LIMIT ?",
            scan_after=(
                f"SELECT pk, sk, doc FROM {t} WHERE (pk, sk) > (?, ?) AND {_LIVE}"
                " ORDER BY pk, sk LIMIT ?"
            ),
            count=f"SELECT count(*) FROM {t} WHERE {_LIVE}",
            sweep=(
                f"DELETE FROM {t} WHERE (pk, sk) IN (SELECT pk, sk FROM {t}"
                " WHERE expires IS NOT NULL AND expires <= ? LIMIT ?)"
            ),
        )


@functools.lru_cache(maxsize=256)
def _query_sql(
    name: str, low: bool, high: bool, high_open: bool, after: bool, reverse: bool
) -> str:
    where = ["pk = ?"]
    if low:
        where.append("sk >= ?")
    if high:
        where.append("sk < ?" if high_open else "sk <= ?")
    if after:
        where.append("sk < ?" if reverse else "sk > ?")
    where.append(_LIVE)
    order = "DESC" if reverse else "ASC"
    return (
        f"SELECT pk, sk, doc FROM {_ident(name)} WHERE {' AND '.join(where)}"
        f" ORDER BY sk {order} LIMIT ?"
    )


@functools.lru_cache(maxsize=256)
def _update_sql(name: str, sets: int, adds: int, upsert: bool) -> str:
    """`sets` values and `adds` increments applied to the document in one expression.
    Parameters: for each set (path, json), for each add (path, path, number); then the key."""
    t = _ident(name)
    doc = f"{t}.doc"
    pairs = ["?, json(?)"] * sets + [f"?, coalesce(json_extract({doc}, ?), 0) + ?"] * adds
    changed = f"json_set({doc}, {', '.join(pairs)})" if pairs else doc
    numeric = " AND ".join(
        [f"coalesce(json_type({doc}, ?), 'null') IN ('integer', 'real', 'null')"] * adds
    )
    if not upsert:
        where = f"pk = ? AND sk = ? AND {_LIVE}" + (f" AND {numeric}" if adds else "")
        return f"UPDATE {t} SET doc = {changed} WHERE {where} RETURNING doc"
    expired = f"({t}.expires IS NOT NULL AND {t}.expires <= ?)"
    return (
        f"INSERT INTO {t} (pk, sk, doc) VALUES (?, ?, ?) ON CONFLICT (pk, sk) DO UPDATE"
        f" SET doc = CASE WHEN {expired} THEN excluded.doc ELSE {changed} END"
        + (f" WHERE {expired} OR ({numeric})" if adds else "")
        + " RETURNING doc"
    )


class SqliteTables:
    """`TableEngine` on one SQLite file; connects on first use, up to `pool_size` connections
    (see `_pool`)."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000, pool_size: int = 1) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.busy_timeout_ms = busy_timeout_ms
        self._pool: Pool[sqlite3.Connection] = Pool(
            self._connect, sqlite3.Connection.close, pool_size, url=self.url
        )
        self._sql: dict[str, _Sql] = {}
        track(self)

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists() and not self.path.parent.is_dir():
            raise StoreUnavailable(
                "the service's database file's folder does not exist (the platform creates it"
                " when it starts)",
                url=self.url,
            )
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,  # autocommit; transactions are begun explicitly
                check_same_thread=False,  # one thread at a time: the pool leases it
                cached_statements=256,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}", url=self.url) from exc
        return conn

    def _run(self, table: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        pool = self._pool
        leased = pool.lease.get()
        conn = leased or pool.acquire()
        try:
            return fn(conn)
        except (sqlite3.Error, OSError, UnicodeEncodeError) as exc:
            raise self._failed(table, exc) from exc
        finally:
            if leased is None:
                pool.release(conn)

    @contextlib.contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection for a `with lamina.sql()` block: one transaction (`BEGIN IMMEDIATE`,
        committed at the end, rolled back on an exception), or a savepoint when the block is
        inside another one; with `autocommit`, no transaction of its own."""
        pool = self._pool
        outer = pool.lease.get()
        conn = outer or pool.acquire()
        token = pool.lease.set(conn) if outer is None else None
        try:
            if autocommit:
                yield conn
            elif not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                if conn.in_transaction:
                    conn.execute("COMMIT")
            else:
                yield from _savepoint(conn)
        finally:
            if token is not None:
                pool.lease.reset(token)
                try:
                    if conn.in_transaction:  # left open by an autocommit block
                        conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pool.release(conn, broken=True)
                else:
                    pool.release(conn)

    def close(self) -> None:
        self._pool.close()

    def forget(self) -> None:
        self._pool.forget()

    def _s(self, table: str) -> _Sql:
        sql = self._sql.get(table)
        if sql is None:
            sql = self._sql[table] = _Sql.of(table)
        return sql

    # -- schema -------------------------------------------------------------------------------
    def create(self, defs: Sequence[TableDef]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def run(conn: sqlite3.Connection) -> None:
            _wal(conn, self.busy_timeout_ms)
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_META} (name TEXT PRIMARY KEY, key TEXT NOT NULL,"
                    " sort TEXT, ttl TEXT, created_ms INTEGER NOT NULL)"
                )
                for defn in defs:
                    _create_one(conn, defn, self.url)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        self._run(", ".join(d.name for d in defs), run)

    # -- items --------------------------------------------------------------------------------
    def get(self, table: str, pk: str, sk: str, now: float) -> str | None:
        sql = self._s(table).get
        pool = self._pool
        leased = pool.lease.get()
        conn = leased or pool.acquire()
        try:
            row = conn.execute(sql, (pk, sk, now)).fetchone()
        except (sqlite3.Error, OSError, UnicodeEncodeError) as exc:
            raise self._failed(table, exc) from exc
        finally:
            if leased is None:
                pool.release(conn)
        return None if row is None else row[0]

    def put(self, table: str, pk: str, sk: str, doc: str, *, if_absent: bool, now: float) -> bool:
        sql = self._s(table)
        pool = self._pool
        leased = pool.lease.get()
        conn = leased or pool.acquire()
        try:
            if if_absent:
                return conn.execute(sql.put_if_absent, (pk, sk, doc, now)).rowcount == 1
            conn.execute(sql.put, (pk, sk, doc))
            return True
        except (sqlite3.Error, OSError, UnicodeEncodeError) as exc:
            raise self._failed(table, exc) from exc
        finally:
            if leased is None:
                pool.release(conn)

    def delete(self, table: str, pk: str, sk: str, now: float) -> bool:
        rows = self._all(table, self._s(table).delete, (pk, sk))
        return bool(rows) and (rows[0][0] is None or rows[0][0] > now)

    def update(self, table: str, pk: str, sk: str, change: Update, now: float) -> str | None:
        params: list[Any] = []
        for name, value in change.sets.items():
            params += (_path(name), value)
        for name, number in change.adds.items():
            params += (_path(name), _path(name), number)
        checks = [_path(name) for name in change.adds]
        if change.insert is None:
            params += (pk, sk, now, *checks)
        else:
            params = [pk, sk, change.insert, now, *params]
            if change.adds:
                params += (now, *checks)
        sql = _update_sql(table, len(change.sets), len(change.adds), change.insert is not None)
        rows = self._all(table, sql, params)
        return rows[0][0] if rows else None

    def query(
        self,
        table: str,
        pk: str,
        *,
        low: str | None,
        high: str | None,
        high_open: bool,
        after: str | None,
        reverse: bool,
        limit: int,
        now: float,
    ) -> list[Row]:
        sql = _query_sql(
            table, low is not None, high is not None, high_open, after is not None, reverse
        )
        params = [pk, *(v for v in (low, high, after) if v is not None), now, limit]
        return self._all(table, sql, params)

    def scan(
        self, table: str, *, after: tuple[str, str] | None, limit: int, now: float
    ) -> list[Row]:
        sql = self._s(table)
        if after is None:
            return self._all(table, sql.scan_first, (now, limit))
        return self._all(table, sql.scan_after, (*after, now, limit))

    def count(self, table: str, now: float) -> int:
        return int(self._all(table, self._s(table).count, (now,))[0][0])

    def sweep(self, table: str, now: float, limit: int) -> int:
        sql = self._s(table).sweep
        return self._run(table, lambda conn: conn.execute(sql, (now, limit)).rowcount)

    def _all(self, table: str, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._run(table, lambda conn: conn.execute(sql, params).fetchall())

    def _failed(self, table: str, exc: BaseException) -> Exception:
        if isinstance(exc, UnicodeEncodeError):
            return TableError(table, f"a key or value is not valid Unicode text: {exc.reason}")
        if isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc):
            return TableError(
                table,
                "the table does not exist in the database yet (the platform creates"
                " declared tables when it starts)",
            )
        return StoreUnavailable(f"{type(exc).__name__}: {exc}", url=self.url)


def _savepoint(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A nested block: a savepoint, released at its end, rolled back to on an exception."""
    conn.execute("SAVEPOINT lamina_sql")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK TO lamina_sql")
            conn.execute("RELEASE lamina_sql")
        raise
    if conn.in_transaction:
        conn.execute("RELEASE lamina_sql")


def _wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Switch to WAL; several processes opening a new file at once may see "database is
    locked" without the busy handler waiting, so such attempts are retried."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    delay = 0.005
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch the journal to WAL (got {mode!r})")


def _create_one(conn: sqlite3.Connection, defn: TableDef, url: str) -> None:
    t = _ident(defn.name)
    index = _ident(f"{defn.name}__expires")
    row = conn.execute(
        f"SELECT key, sort, ttl FROM {_META} WHERE name = ?", (defn.name,)
    ).fetchone()
    if row is not None:
        if (row[0], row[1]) != (defn.key, defn.sort):
            raise TableError(
                defn.name,
                f"it was created with key {row[0]!r} and sort key {row[1]!r}; lamina.yaml now"
                f" says key {defn.key!r} and sort key {defn.sort!r}. Keys cannot change: name"
                f" a new table, or delete this one's data (in {url})",
            )
        if row[2] == defn.ttl:
            return
        # The ttl attribute changed: recompute the generated column.
        conn.execute(f"DROP INDEX IF EXISTS {index}")
        conn.execute(f"ALTER TABLE {t} DROP COLUMN expires")
        conn.execute(
            f"ALTER TABLE {t} ADD COLUMN expires REAL GENERATED ALWAYS AS"
            f" ({_expires(defn.ttl)}) VIRTUAL"
        )
        conn.execute(f"UPDATE {_META} SET ttl = ? WHERE name = ?", (defn.ttl, defn.name))
    else:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (pk TEXT NOT NULL, sk TEXT NOT NULL,"
            f" doc TEXT NOT NULL, expires REAL GENERATED ALWAYS AS ({_expires(defn.ttl)})"
            " VIRTUAL, PRIMARY KEY (pk, sk)) WITHOUT ROWID"
        )
        conn.execute(
            f"INSERT INTO {_META} (name, key, sort, ttl, created_ms) VALUES (?, ?, ?, ?, ?)",
            (defn.name, defn.key, defn.sort, defn.ttl, int(time.time() * 1000)),
        )
    if defn.ttl is not None:
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {index} ON {t} (expires) WHERE expires IS NOT NULL"
        )
