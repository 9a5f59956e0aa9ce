"""Service tables on PostgreSQL: one schema per service, one table per declared table.

    CREATE TABLE "lamina_svc_shop"."orders" (
        pk text COLLATE "C", sk text COLLATE "C",   -- encoded keys, compared bytewise
        doc jsonb,                                  -- the item
        expires double precision GENERATED ALWAYS AS (<the ttl attribute when a number>) STORED,
        PRIMARY KEY (pk, sk))

Up to `pool_size` psycopg 3 connections per engine (one per concurrent invocation of an
instance, see `_pool`), autocommit, `search_path` set to the service's schema, statements
prepared by the server after a few uses. A `with lamina.sql()` block is one transaction on a
pooled connection (`connection`). Every call is one statement: `INSERT ... ON CONFLICT` and
`UPDATE ... WHERE` are atomic under concurrent writers (a waiting UPDATE re-reads the row the
other committed), so `add` increments from many processes never lose one.

URL: the platform store's libpq URL with `lamina_schema=SCHEMA` naming the service's schema
(see `lamina.store.tables.service_url`). A schema name longer than PostgreSQL's 63 bytes is
shortened with a hash.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from lamina.errors import StoreError, StoreUnavailable, TableError
from lamina.store._pool import Pool
from lamina.store._rows import redact
from lamina.store.tables import Row, TableDef, Update, track

__all__ = ["PostgresTables", "identifier"]

_LIVE = "(expires IS NULL OR expires > %s)"
_META = "_lamina_tables"
_MAX_IDENT = 63  # bytes, PostgreSQL's NAMEDATALEN - 1
_CONNECT_TIMEOUT_S = 5


def identifier(name: str) -> str:
    """`name` as a PostgreSQL identifier: itself when it fits in 63 bytes, else its head and a
    hash of the whole (so two long names never meet)."""
    if len(name.encode()) <= _MAX_IDENT:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
    head = name.encode()[: _MAX_IDENT - len(digest) - 1].decode(errors="ignore")
    return f"{head}_{digest}"


def _q(name: str) -> str:
    return '"' + identifier(name).replace('"', '""') + '"'


def _expires(ttl: str | None) -> str:
    if ttl is None:
        return "NULL::double precision"
    key = "'" + ttl.replace("'", "''") + "'"
    return (
        f"CASE WHEN jsonb_typeof(doc -> {key}) = 'number'"
        f" THEN (doc ->> {key})::double precision END"
    )


@dataclass(frozen=True, slots=True)
class _Sql:
    get: str
    put: str
    put_if_absent: str
    delete: str
    scan_first: str
    scan_after: str
    count: str
    sweep: str

    @classmethod
    def of(cls, t: str) -> _Sql:
        insert = (
            f"INSERT INTO {t} AS t (pk, sk, doc) VALUES (%s, %s, %s::jsonb)"
            " ON CONFLICT (pk, sk) DO UPDATE SET doc = excluded.doc"
        )
        return cls(
            get=f"SELECT doc::text FROM {t} WHERE pk = %s AND sk = %s AND {_LIVE}",
            put=insert,
            put_if_absent=f"{insert} WHERE t.expires IS NOT NULL AND t.expires <= %s",
            delete=f"DELETE FROM {t} WHERE pk = %s AND sk = %s RETURNING expires",
            scan_first=(
                f"SELECT pk, sk, doc::text FROM {t} WHERE {_LIVE} ORDER BY pk, sk LIMIT %s"
            ),
            scan_after=(
                f"SELECT pk, sk, doc::text FROM {t} WHERE (pk, sk) > (%s, %s) AND {_LIVE}"
                " ORDER BY pk, sk LIMIT %s"
            ),
            count=f"SELECT count(*) FROM {t} WHERE {_LIVE}",
            sweep=(
                f"DELETE FROM {t} WHERE (pk, sk) IN (SELECT pk, sk FROM {t}"
                " WHERE expires IS NOT NULL AND expires <= %s LIMIT %s)"
            ),
        )


@functools.lru_cache(maxsize=256)
def _query_sql(t: str, low: bool, high: bool, high_open: bool, after: bool, reverse: bool) -> str:
    where = ["pk = %s"]
    if low:
        where.append("sk >= %s")
    if high:
        where.append("sk < %s" if high_open else "sk <= %s")
    if after:
        where.append("sk < %s" if reverse else "sk > %s")
    where.append(_LIVE)
    order = "DESC" if reverse else "ASC"
    return (
        f"SELECT pk, sk, doc::text FROM {t} WHERE {' AND '.join(where)}"
        f" ORDER BY sk {order} LIMIT %s"
    )


@functools.lru_cache(maxsize=256)
def _update_sql(t: str, sets: bool, adds: int, upsert: bool) -> str:
    """Parameters: the `set` object (when `sets`), for each add (name, name, number); then the
    key and conditions."""
    changed = "t.doc || %s::jsonb" if sets else "t.doc"
    for _ in range(adds):
        changed = (
            f"jsonb_set({changed}, ARRAY[%s::text],"
            " to_jsonb(coalesce((t.doc ->> %s::text)::numeric, 0) + %s::numeric))"
        )
    numeric = " AND ".join(
        ["coalesce(jsonb_typeof(t.doc -> %s::text), 'null') IN ('number', 'null')"] * adds
    )
    if not upsert:
        where = f"pk = %s AND sk = %s AND {_LIVE}" + (f" AND {numeric}" if adds else "")
        return f"UPDATE {t} AS t SET doc = {changed} WHERE {where} RETURNING doc::text"
    expired = "(t.expires IS NOT NULL AND t.expires <= %s)"
    return (
        f"INSERT INTO {t} AS t (pk, sk, doc) VALUES (%s, %s, %s::jsonb) ON CONFLICT (pk, sk)"
        f" DO UPDATE SET doc = CASE WHEN {expired} THEN excluded.doc ELSE {changed} END"
        + (f" WHERE {expired} OR ({numeric})" if adds else "")
        + " RETURNING doc::text"
    )


class PostgresTables:
    """`TableEngine` on one PostgreSQL schema; connects on first use, up to `pool_size`
    connections (see `_pool`), each with `search_path` set to the schema."""

    def __init__(
        self,
        conninfo: str,
        schema: str,
        *,
        url: str = "postgresql://",
        pool_size: int = 1,
        application_name: str = "lamina",
    ) -> None:
        self.schema = identifier(schema)
        self.url = url
        self.application_name = application_name
        self._conninfo = conninfo
        self._pool: Pool[psycopg.Connection[Any]] = Pool(
            self._connect, psycopg.Connection.close, pool_size, url=url
        )
        self._sql: dict[str, _Sql] = {}
        track(self)

    @classmethod
    def from_url(
        cls, url: str, *, pool_size: int = 1, application_name: str = "lamina"
    ) -> PostgresTables:
        shown = redact(url)
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = dict(query).get("lamina_schema")
        if not schema:
            raise StoreError("expected lamina_schema=SCHEMA naming the service's schema", url=shown)
        theirs = [(k, v) for k, v in query if not k.startswith("lamina_")]
        if not any(k == "connect_timeout" for k, _ in theirs):
            theirs.append(("connect_timeout", str(_CONNECT_TIMEOUT_S)))
        conninfo = urlunsplit(parts._replace(query=urlencode(theirs)))
        return cls(
            conninfo, schema, url=shown, pool_size=pool_size, application_name=application_name
        )

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        options = conninfo_to_dict(self._conninfo).get("options") or ""
        value = _q(self.schema).replace("\\", "\\\\").replace(" ", "\\ ")  # libpq options
        search_path = f"-c search_path={value}"
        try:
            return psycopg.connect(
                self._conninfo,
                autocommit=True,
                application_name=self.application_name,
                options=f"{options} {search_path}".strip(),
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"{type(exc).__name__}: {str(exc).strip()}", url=self.url
            ) from exc

    @contextlib.contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """The connection for a `with lamina.sql()` block: one transaction, committed at the
        end and rolled back on an exception (a savepoint inside another block); with
        `autocommit`, no transaction of its own."""
        pool = self._pool
        outer = pool.lease.get()
        conn = outer or pool.acquire()
        token = pool.lease.set(conn) if outer is None else None
        try:
            if autocommit:
                yield conn
            else:
                with conn.transaction():
                    yield conn
        finally:
            if token is not None:
                pool.lease.reset(token)
                self._give_back(conn)

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        """Return a block's connection idle: a transaction it left open is rolled back."""
        broken = conn.broken or conn.closed
        if not broken and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                conn.rollback()
            except psycopg.Error:
                broken = True
        self._pool.release(conn, broken=broken or conn.broken)

    def close(self) -> None:
        self._pool.close()

    def forget(self) -> None:
        self._pool.forget()

    def _s(self, table: str) -> _Sql:
        found = self._sql.get(table)
        if found is None:
            found = self._sql[table] = _Sql.of(self._t(table))
        return found

    def _t(self, table: str) -> str:
        return f"{_q(self.schema)}.{_q(table)}"

    def _failed(self, table: str, exc: BaseException) -> Exception:
        if isinstance(exc, psycopg.errors.UndefinedTable):
            return TableError(
                table,
                "the table does not exist in the database yet (the platform creates declared"
                " tables when it starts)",
            )
        if isinstance(
            exc,
            psycopg.errors.DataException
            | psycopg.errors.UntranslatableCharacter
            | psycopg.errors.CharacterNotInRepertoire,
        ):
            return TableError(table, f"PostgreSQL refused the data: {str(exc).strip()}")
        if isinstance(exc, UnicodeEncodeError):
            return TableError(table, f"a key or value is not valid Unicode text: {exc.reason}")
        return StoreUnavailable(f"{type(exc).__name__}: {str(exc).strip()}", url=self.url)

    def _all(self, table: str, query: str, params: Sequence[Any]) -> list[Any]:
        pool = self._pool
        leased = pool.lease.get()
        conn = leased or pool.acquire()
        broken = False
        try:
            return conn.execute(query, params).fetchall()
        except (psycopg.Error, OSError, UnicodeEncodeError) as exc:
            broken = conn.broken  # a connection that is no longer usable is replaced
            raise self._failed(table, exc) from exc
        finally:
            if leased is None:
                pool.release(conn, broken=broken)

    # -- schema -------------------------------------------------------------------------------
    def create(self, defs: Sequence[TableDef]) -> None:
        lock = int.from_bytes(
            hashlib.blake2b(f"lamina.tables:{self.schema}".encode(), digest_size=8).digest(),
            "big",
            signed=True,
        )
        meta = f"{_q(self.schema)}.{_META}"
        names = ", ".join(d.name for d in defs) or self.schema
        try:
            with self.connection() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {meta} (name text PRIMARY KEY,"
                    " key text NOT NULL, sort text, ttl text, created_ms bigint NOT NULL)"
                )
                for defn in defs:
                    self._create_one(conn, meta, defn)
        except (psycopg.Error, OSError) as exc:
            raise self._failed(names, exc) from exc

    def _create_one(self, conn: psycopg.Connection[Any], meta: str, defn: TableDef) -> None:
        t = self._t(defn.name)
        index = _q(f"{defn.name}__expires")
        row = conn.execute(
            f"SELECT key, sort, ttl FROM {meta} WHERE name = %s",
            (defn.name,),
        ).fetchone()
        if row is not None:
            if (row[0], row[1]) != (defn.key, defn.sort):
                raise TableError(
                    defn.name,
                    f"it was created with key {row[0]!r} and sort key {row[1]!r}; lamina.yaml"
                    f" now says key {defn.key!r} and sort key {defn.sort!r}. Keys cannot change:"
                    f" name a new table, or drop this one (schema {self.schema!r})",
                )
            if row[2] == defn.ttl:
                return
            conn.execute(f"ALTER TABLE {t} DROP COLUMN expires")
            conn.execute(
                f"ALTER TABLE {t} ADD COLUMN expires double precision"
                f" GENERATED ALWAYS AS ({_expires(defn.ttl)}) STORED"
            )
            conn.execute(
                f"UPDATE {meta} SET ttl = %s WHERE name = %s",
                (defn.ttl, defn.name),
            )
        else:
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS {t} (pk text COLLATE "C" NOT NULL,'
                f' sk text COLLATE "C" NOT NULL, doc jsonb NOT NULL, expires double precision'
                f" GENERATED ALWAYS AS ({_expires(defn.ttl)}) STORED, PRIMARY KEY (pk, sk))"
            )
            conn.execute(
                f"INSERT INTO {meta} (name, key, sort, ttl, created_ms)"
                " VALUES (%s, %s, %s, %s, %s)",
                (defn.name, defn.key, defn.sort, defn.ttl, int(time.time() * 1000)),
            )
        if defn.ttl is not None:
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {index} ON {t} (expires) WHERE expires IS NOT NULL"
            )

    # -- items --------------------------------------------------------------------------------
    def get(self, table: str, pk: str, sk: str, now: float) -> str | None:
        query = self._s(table).get
        pool = self._pool
        leased = pool.lease.get()
        conn = leased or pool.acquire()
        broken = False
        try:
            row = conn.execute(query, (pk, sk, now)).fetchone()
        except (psycopg.Error, OSError, UnicodeEncodeError) as exc:
            broken = conn.broken
            raise self._failed(table, exc) from exc
        finally:
            if leased is None:
                pool.release(conn, broken=broken)
        return None if row is None else row[0]

    def put(self, table: str, pk: str, sk: str, doc: str, *, if_absent: bool, now: float) -> bool:
        statements = self._s(table)
        pool = self._pool
        leased = pool.lease.get()
        conn = leased or pool.acquire()
        broken = False
        try:
            if if_absent:
                cur = conn.execute(statements.put_if_absent, (pk, sk, doc, now))
                return cur.rowcount == 1
            conn.execute(statements.put, (pk, sk, doc))
            return True
        except (psycopg.Error, OSError, UnicodeEncodeError) as exc:
            broken = conn.broken
            raise self._failed(table, exc) from exc
        finally:
            if leased is None:
                pool.release(conn, broken=broken)

    def delete(self, table: str, pk: str, sk: str, now: float) -> bool:
        rows = self._all(table, self._s(table).delete, (pk, sk))
        return bool(rows) and (rows[0][0] is None or rows[0][0] > now)

    def update(self, table: str, pk: str, sk: str, change: Update, now: float) -> str | None:
        params: list[Any] = []
        if change.sets:
            body = (
                "{"
                + ",".join(
                    f"{orjson.dumps(name).decode()}:{value}" for name, value in change.sets.items()
                )
                + "}"
            )
            params.append(body)
        for name, number in change.adds.items():
            params += (name, name, number)
        checks = list(change.adds)
        if change.insert is None:
            params += (pk, sk, now, *checks)
        else:
            params = [pk, sk, change.insert, now, *params]
            if change.adds:
                params += (now, *checks)
        query = _update_sql(
            self._t(table), bool(change.sets), len(change.adds), change.insert is not None
        )
        rows = self._all(table, query, params)
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
        query = _query_sql(
            self._t(table), low is not None, high is not None, high_open, after is not None, reverse
        )
        params = [pk, *(v for v in (low, high, after) if v is not None), now, limit]
        return self._all(table, query, params)

    def scan(
        self, table: str, *, after: tuple[str, str] | None, limit: int, now: float
    ) -> list[Row]:
        statements = self._s(table)
        if after is None:
            return self._all(table, statements.scan_first, (now, limit))
        return self._all(table, statements.scan_after, (*after, now, limit))

    def count(self, table: str, now: float) -> int:
        return int(self._all(table, self._s(table).count, (now,))[0][0])

    def sweep(self, table: str, now: float, limit: int) -> int:
        query = self._s(table).sweep
        pool = self._pool
        leased = pool.lease.get()
        conn = leased or pool.acquire()
        broken = False
        try:
            return conn.execute(query, (now, limit)).rowcount
        except (psycopg.Error, OSError) as exc:
            broken = conn.broken
            raise self._failed(table, exc) from exc
        finally:
            if leased is None:
                pool.release(conn, broken=broken)
