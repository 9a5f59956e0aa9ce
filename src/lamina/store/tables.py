"""Service tables: the "serverless database" each service declares in lamina.yaml.

A table holds JSON documents ("items") under a partition key and an optional sort key, with an
optional TTL attribute. `Table` is the API function code gets from `lamina.table(name)`; it is
synchronous (handlers usually are) and goes straight to the database from the calling process:
- SQLite: one file per service (`APP_DIR/.lamina/services/<service>.db`), see `_tables_sqlite`;
- PostgreSQL: one schema per service in the platform store's database, see `_tables_postgres`.
Each declared table is one SQL table `(pk, sk, doc, expires)` in that namespace; keys are
encoded so that both backends order them alike (see `_tablekeys`).

The same namespace is the service's SQL database: `lamina.sql()` leases one of the engine's
pooled connections for a `with` block (`TableEngine.connection`).

Consistency: every call is one SQL statement (autocommit), so it is atomic on its own and
across processes: `put(if_absent=True)` and `update(if_exists=...)` are decided by the database
(`INSERT ... ON CONFLICT`, `UPDATE ... WHERE`), `add` increments are arithmetic in SQL, never
read-modify-write in Python. Reads see every write committed before they started.

TTL: when a table names a `ttl` attribute, an item whose value there is a number of epoch
seconds at or before now is expired: no read returns it, `put(if_absent=True)` overwrites it,
`update(if_exists=True)` does not find it. The platform deletes expired items in the background
(`sweep`). "Now" comes from an injected clock (`Clock.wall`).

The store never decides anything else: which service may open which tables is decided by the
platform, which gives each function only its own service's location (`service_url`).
"""

from __future__ import annotations

import math
import os
import urllib.parse
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from lamina.clock import SystemClock
from lamina.errors import ConditionFailed, StoreError, TableError, TableNotFound
from lamina.store import is_postgres_url
from lamina.store._tablekeys import (
    NO_SORT,
    check_attribute,
    decode_cursor,
    encode_cursor,
    encode_key,
    prefix_range,
)

__all__ = [
    "DEFAULT_PAGE",
    "Page",
    "Row",
    "Table",
    "TableDef",
    "TableEngine",
    "Tables",
    "from_env",
    "open_engine",
    "service_url",
    "tables_env",
]

DEFAULT_PAGE = 1000  # items per page when `limit` is None
Row = tuple[str, str, str]  # (encoded partition, encoded sort, JSON document)


class WallClock(Protocol):
    def wall(self) -> float:
        """Seconds since the epoch."""
        ...


@dataclass(frozen=True, slots=True)
class TableDef:
    """One declared table, as the store sees it."""

    name: str  # table name, unique within its service
    key: str  # partition key attribute
    sort: str | None = None  # sort key attribute
    ttl: str | None = None  # attribute holding an expiry time in epoch seconds

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "sort": self.sort, "ttl": self.ttl}


@dataclass(frozen=True, slots=True)
class Update:
    """An update as the engine runs it: JSON texts of `set` values and numbers to `add`."""

    sets: Mapping[str, str]  # attribute -> JSON text of its new value
    adds: Mapping[str, int | float]  # attribute -> increment (missing or null counts as 0)
    insert: str | None  # the JSON document to insert when no live item exists (upsert), or None


class TableEngine(Protocol):
    """A backend for one service's tables. Synchronous and thread-safe; keys are encoded,
    documents are JSON text, `now` is epoch seconds. Translates driver errors to
    `StoreUnavailable` (database failures) or `TableError` (data the database refused)."""

    url: str  # where the tables live, without a password, for messages

    def create(self, defs: Sequence[TableDef]) -> None:
        """Create the namespace and any missing table; refuse a changed key, follow a changed
        ttl attribute."""

    def get(self, table: str, pk: str, sk: str, now: float) -> str | None: ...

    def put(self, table: str, pk: str, sk: str, doc: str, *, if_absent: bool, now: float) -> bool:
        """Write the item; with `if_absent`, only when no live item has the key: False then."""

    def delete(self, table: str, pk: str, sk: str, now: float) -> bool:
        """Delete the item; whether a live one was there."""

    def update(self, table: str, pk: str, sk: str, change: Update, now: float) -> str | None:
        """Apply `change` atomically; the new document, or None when nothing was changed (no
        live item and no `insert`, or an `add` attribute that is not a number)."""

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
        """Live items of partition `pk` with `low <= sk <= high` (`< high` when `high_open`),
        after sort key `after` in the page order, ascending (descending with `reverse`)."""

    def scan(
        self, table: str, *, after: tuple[str, str] | None, limit: int, now: float
    ) -> list[Row]:
        """Live items in (partition, sort) order, after `after`."""

    def count(self, table: str, now: float) -> int:
        """How many live items the table holds."""

    def sweep(self, table: str, now: float, limit: int) -> int:
        """Delete up to `limit` expired items; how many were deleted."""

    def connection(self, *, autocommit: bool = False) -> AbstractContextManager[Any]:
        """A pooled DB-API connection to the namespace for a `with` block (`lamina.sql()`):
        one transaction, committed when the block ends and rolled back when it raises (a
        savepoint when nested); with `autocommit`, none of its own. Table calls made inside the
        block by the same thread or task use the same connection."""
        ...

    def close(self) -> None: ...

    def forget(self) -> None:
        """In a forked child: drop the parent's connections without closing them."""


@dataclass(slots=True)
class Page:
    """One page of a query or scan: its items, and a cursor for the next page (None: the last
    page). Iterating a page iterates its items."""

    items: list[dict[str, Any]]
    cursor: str | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "cursor": self.cursor}


def _limit(table: str, limit: Any) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise TableError(table, f"limit: expected a whole number >= 1 or None, got {limit!r}")
    return limit


def _number(table: str, value: Any, what: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TableError(table, f"{what}: expected a finite number, got {value!r}")
    return value


def _json(table: str, value: Any, what: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise TableError(table, f"{what}: not a JSON document: {exc}") from None


class Table:
    """One table of the caller's service. Items are JSON objects (dicts with str keys)."""

    __slots__ = ("_engine", "_now", "defn", "name")

    def __init__(self, defn: TableDef, engine: TableEngine, clock: WallClock) -> None:
        self.defn = defn
        self.name = defn.name
        self._engine = engine
        self._now = clock.wall

    def __repr__(self) -> str:
        return f"<lamina.Table {self.name!r} key={self.defn.key!r} sort={self.defn.sort!r}>"

    # -- keys --------------------------------------------------------------------------------
    def _key(self, key: Any) -> tuple[str, str]:
        defn = self.defn
        if defn.sort is None:
            return encode_key(self.name, key, f"key {defn.key!r}"), NO_SORT
        if not isinstance(key, tuple | list) or len(key) != 2:
            raise TableError(
                self.name,
                f"key: expected a ({defn.key}, {defn.sort}) pair, since the table has a sort"
                f" key, got {key!r}",
            )
        return (
            encode_key(self.name, key[0], f"key {defn.key!r}"),
            encode_key(self.name, key[1], f"sort key {defn.sort!r}"),
        )

    def _item_key(self, item: Any) -> tuple[str, str]:
        defn = self.defn
        if not isinstance(item, dict):
            raise TableError(self.name, f"item: expected a dict, got {type(item).__name__}")
        try:
            pk = encode_key(self.name, item[defn.key], f"item attribute {defn.key!r} (the key)")
            if defn.sort is None:
                return pk, NO_SORT
            return pk, encode_key(
                self.name, item[defn.sort], f"item attribute {defn.sort!r} (the sort key)"
            )
        except KeyError as exc:
            role = "key" if exc.args[0] == defn.key else "sort key"
            raise TableError(
                self.name, f"item has no attribute {exc.args[0]!r} (the table's {role})"
            ) from None

    @staticmethod
    def _shown_key(key: Any) -> Any:
        return tuple(key) if isinstance(key, list) else key

    # -- items -------------------------------------------------------------------------------
    def get(self, key: Any) -> dict[str, Any] | None:
        """The item with `key` (the partition value, or a (partition, sort) pair when the table
        has a sort key), or None when there is none or it has expired."""
        pk, sk = self._key(key)
        doc = self._engine.get(self.name, pk, sk, self._now())
        return None if doc is None else orjson.loads(doc)

    def put(self, item: dict[str, Any], if_absent: bool = False) -> None:
        """Write `item` whole (replacing any item with its key). With `if_absent=True`, only if no
        live item has its key, else raise `lamina.ConditionFailed`."""
        pk, sk = self._item_key(item)
        doc = _json(self.name, item, "item")
        if not self._engine.put(self.name, pk, sk, doc, if_absent=if_absent, now=self._now()):
            raise ConditionFailed(self.name, self._item_value_key(item), "if_absent")

    def _item_value_key(self, item: dict[str, Any]) -> Any:
        if self.defn.sort is None:
            return item[self.defn.key]
        return (item[self.defn.key], item[self.defn.sort])

    def delete(self, key: Any) -> bool:
        """Delete the item with `key`; whether a live item was there."""
        pk, sk = self._key(key)
        return self._engine.delete(self.name, pk, sk, self._now())

    def update(
        self,
        key: Any,
        set: Mapping[str, Any] | None = None,
        add: Mapping[str, int | float] | None = None,
        if_exists: bool = True,
    ) -> dict[str, Any]:
        """Change top-level attributes atomically and return the new item: `set` gives them new
        values, `add` adds numbers to them (a missing or null attribute counts as 0). With
        `if_exists=True` (default) a missing or expired item raises `lamina.ConditionFailed`;
        with `if_exists=False` one is created from the key and the changes."""
        pk, sk = self._key(key)
        change = self._change(key, set or {}, add or {}, if_exists)
        doc = self._engine.update(self.name, pk, sk, change, self._now())
        if doc is not None:
            return orjson.loads(doc)  # type: ignore[no-any-return]
        current = self._engine.get(self.name, pk, sk, self._now())
        if current is None:
            raise ConditionFailed(self.name, self._shown_key(key), "if_exists")
        item = orjson.loads(current)
        for name in change.adds:
            value = item.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise TableError(
                    self.name,
                    f"add: attribute {name!r} of item {key!r} holds {type(value).__name__}"
                    f" {value!r}, not a number",
                )
        raise TableError(self.name, f"update of item {key!r} changed nothing; retry it")

    def _change(
        self, key: Any, sets: Mapping[str, Any], adds: Mapping[str, Any], if_exists: bool
    ) -> Update:
        if not isinstance(sets, Mapping) or not isinstance(adds, Mapping):
            raise TableError(self.name, "set and add: expected mappings of attribute to value")
        keys = {self.defn.key, self.defn.sort}
        set_json: dict[str, str] = {}
        for name, value in sets.items():
            check_attribute(self.name, name, "set")
            if name in keys:
                raise TableError(self.name, f"set: cannot change the key attribute {name!r}")
            set_json[name] = _json(self.name, value, f"set {name!r}")
        numbers: dict[str, int | float] = {}
        for name, value in adds.items():
            check_attribute(self.name, name, "add")
            if name in keys:
                raise TableError(self.name, f"add: cannot change the key attribute {name!r}")
            if name in sets:
                raise TableError(self.name, f"attribute {name!r} is in both set and add")
            numbers[name] = _number(self.name, value, f"add {name!r}")
        insert = None
        if not if_exists:
            fresh: dict[str, Any] = {self.defn.key: key if self.defn.sort is None else key[0]}
            if self.defn.sort is not None:
                fresh[self.defn.sort] = key[1]
            fresh.update(sets)
            fresh.update(numbers)
            insert = _json(self.name, fresh, "item")
        return Update(sets=set_json, adds=numbers, insert=insert)

    # -- pages -------------------------------------------------------------------------------
    def query(
        self,
        partition: Any,
        prefix: str | None = None,
        between: tuple[Any, Any] | None = None,
        limit: int | None = None,
        reverse: bool = False,
        cursor: str | None = None,
    ) -> Page:
        """Live items of one partition in sort key order (descending with `reverse`): all, or
        those whose (string) sort key starts with `prefix`, or whose sort key is between
        `between=(low, high)`, both included. At most `limit` items (default 1000) per page;
        pass the page's `cursor` back to get the next one."""
        pk = encode_key(self.name, partition, f"partition ({self.defn.key!r})")
        low: str | None = None
        high: str | None = None
        high_open = False
        if prefix is not None or between is not None:
            if self.defn.sort is None:
                raise TableError(self.name, "prefix and between need a sort key; it has none")
            if prefix is not None and between is not None:
                raise TableError(self.name, "give prefix or between, not both")
        if prefix is not None:
            low, high = prefix_range(self.name, prefix)
            high_open = True
        elif between is not None:
            if not isinstance(between, tuple | list) or len(between) != 2:
                raise TableError(self.name, f"between: expected (low, high), got {between!r}")
            low = encode_key(self.name, between[0], "between low")
            high = encode_key(self.name, between[1], "between high")
        after = None
        if cursor is not None:
            cursor_pk, after = decode_cursor(self.name, cursor)
            if cursor_pk != pk:
                raise TableError(self.name, "cursor: it is a cursor of another partition")
        size = _limit(self.name, limit)
        rows = self._engine.query(
            self.name,
            pk,
            low=low,
            high=high,
            high_open=high_open,
            after=after,
            reverse=bool(reverse),
            limit=size + 1,
            now=self._now(),
        )
        return self._page(rows, size)

    def scan(self, limit: int | None = None, cursor: str | None = None) -> Page:
        """Every live item, in key order, at most `limit` (default 1000) per page; pass the
        page's `cursor` back to get the next one."""
        after = decode_cursor(self.name, cursor) if cursor is not None else None
        size = _limit(self.name, limit)
        rows = self._engine.scan(self.name, after=after, limit=size + 1, now=self._now())
        return self._page(rows, size)

    def count(self) -> int:
        """How many live items the table holds (reads them all: for tools, not hot paths)."""
        return self._engine.count(self.name, self._now())

    def _page(self, rows: list[Row], size: int) -> Page:
        more = len(rows) > size
        rows = rows[:size]
        items = [orjson.loads(doc) for _, _, doc in rows]
        cursor = encode_cursor(self.name, rows[-1][0], rows[-1][1]) if more else None
        return Page(items, cursor)


@dataclass
class Tables:
    """One service's tables over one engine: `table(name)` refuses names the service does not
    declare, naming the service that does (`others`: table name -> owning service)."""

    service: str
    defs: Mapping[str, TableDef]
    engine: TableEngine
    clock: WallClock = field(default_factory=SystemClock)
    others: Mapping[str, str] = field(default_factory=dict)
    _tables: dict[str, Table] = field(default_factory=dict, init=False, repr=False)

    def table(self, name: str) -> Table:
        found = self._tables.get(name)
        if found is not None:
            return found
        defn = self.defs.get(name)
        if defn is None:
            raise TableNotFound(
                name, service=self.service, known=sorted(self.defs), owner=self.others.get(name, "")
            )
        found = self._tables[name] = Table(defn, self.engine, self.clock)
        return found

    def create(self) -> None:
        """Create every declared table that does not exist yet (the platform does, at start)."""
        self.engine.create(list(self.defs.values()))

    def close(self) -> None:
        self.engine.close()


# -- locations ----------------------------------------------------------------------------------
def service_url(store_url: str | None, service: str, state_dir: Path) -> str:
    """Where `service`'s tables live, given the platform store's URL: SQLite (store None or
    sqlite:) in `state_dir/services/<service>.db`; PostgreSQL in the store's database, schema
    `<lamina_schema or "lamina">_svc_<service>` (see `_tables_postgres.schema_name`)."""
    if is_postgres_url(store_url):
        parts = urllib.parse.urlsplit(store_url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        base = dict(query).get("lamina_schema") or "lamina"
        kept = [(k, v) for k, v in query if not k.startswith("lamina_")]
        kept.append(("lamina_schema", f"{base}_svc_{service}"))
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(kept)))
    return f"sqlite:///{(state_dir / 'services' / f'{service}.db').absolute()}"


def open_engine(url: str, *, pool_size: int = 1, application_name: str = "lamina") -> TableEngine:
    """The engine for a service location (`service_url`); connects on first use, up to
    `pool_size` connections (PostgreSQL ones named `application_name` in pg_stat_activity)."""
    if url.startswith("sqlite:///"):
        from lamina.store._tables_sqlite import SqliteTables

        return SqliteTables(Path(url.removeprefix("sqlite:///")), pool_size=pool_size)
    if is_postgres_url(url):
        from lamina.store._tables_postgres import PostgresTables

        return PostgresTables.from_url(url, pool_size=pool_size, application_name=application_name)
    raise StoreError("expected sqlite:///PATH or postgresql://... for service tables", url=url)


# -- the function's environment -----------------------------------------------------------------
URL_VAR = "LAMINA_TABLES_URL"  # the service's location (`service_url`)
SPEC_VAR = "LAMINA_TABLES"  # JSON: {"service", "tables": {name: {key, sort, ttl}}, "others"}
POOL_VAR = "LAMINA_DB_CONNECTIONS"  # connections one instance may open (its concurrency)
NAME_VAR = "AWS_LAMBDA_FUNCTION_NAME"  # names the instance's connections: lamina:<function>


def tables_env(
    service: str,
    url: str,
    defs: Sequence[TableDef],
    others: Mapping[str, str],
    connections: int = 1,
) -> dict[str, str]:
    """What the platform puts in the environment of `service`'s functions: its own tables'
    location and specs, the names of other services' tables (names only, for errors), and how
    many connections an instance may open (for tables and `lamina.sql` together)."""
    spec = {
        "service": service,
        "tables": {d.name: d.to_json() for d in defs},
        "others": dict(others),
    }
    return {URL_VAR: url, SPEC_VAR: orjson.dumps(spec).decode(), POOL_VAR: str(connections)}


def from_env(environ: Mapping[str, str], clock: WallClock | None = None) -> Tables:
    """The calling function's tables, from the environment the platform gave it."""
    url, raw = environ.get(URL_VAR), environ.get(SPEC_VAR)
    if not url or not raw:
        raise TableError(
            "?",
            f"{URL_VAR} and {SPEC_VAR} are not set: lamina.table and lamina.sql work inside"
            " functions run by Lamina",
        )
    spec = orjson.loads(raw)
    defs = {
        name: TableDef(name, key=d["key"], sort=d.get("sort"), ttl=d.get("ttl"))
        for name, d in spec["tables"].items()
    }
    pool_size = max(1, int(environ.get(POOL_VAR) or 1))
    engine = open_engine(
        url, pool_size=pool_size, application_name=f"lamina:{environ.get(NAME_VAR, '?')}"
    )
    return Tables(spec["service"], defs, engine, clock or SystemClock(), spec.get("others", {}))


# Instances are forked from a zygote: a child must not use (or close) its parent's connections.
_engines: weakref.WeakSet[Any] = weakref.WeakSet()


def track(engine: TableEngine) -> None:
    """Have `engine` drop its connection in forked children (see `TableEngine.forget`)."""
    _engines.add(engine)


def _after_fork() -> None:
    for engine in list(_engines):
        engine.forget()


os.register_at_fork(after_in_child=_after_fork)
