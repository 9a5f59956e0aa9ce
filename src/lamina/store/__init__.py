"""Store: the only code that touches a database. One `Store` interface (queues with leases,
schedule ticks) with two backends: SQLite, the embedded default, and PostgreSQL, shared by
several machines.

The store keeps records and enforces leases; it never decides retries, delays or dead-lettering
(that is `events`), and never reads a clock: callers pass `now_ms`. Entry point: `open_store(url)`
builds the backend a URL names; `await store.open()` connects and migrates the schema.
Service tables (`lamina.table`) live apart, in a namespace per service: `lamina.store.tables`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeGuard
from urllib.parse import parse_qsl

from lamina.errors import StoreError
from lamina.store._rows import redact
from lamina.store.sqlite import SqliteStore, SyncMode
from lamina.store.types import Message, NewMessage, QueueStats, Store

__all__ = ["Message", "NewMessage", "QueueStats", "Store", "is_postgres_url", "open_store"]

DEFAULT_FILE = "lamina.db"
_EXPECTED = (
    "expected sqlite:///PATH (relative to the working directory; sqlite:////ABSOLUTE/PATH)"
    " or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
)
_SYNC_MODES: tuple[SyncMode, ...] = ("enqueue", "full", "normal")


def is_postgres_url(url: str | None) -> TypeGuard[str]:
    """Whether `url` names a PostgreSQL database (`postgresql://` or `postgres://`)."""
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def open_store(url: str | None, *, default_dir: Path) -> Store:
    """The store `url` names, not yet opened: `None` is SQLite at `default_dir/lamina.db`,
    `sqlite:///PATH[?sync=enqueue|full|normal]` is SQLite at PATH (relative to the working
    directory), `postgresql://...` is PostgreSQL (see `lamina.store.postgres` for its options).
    Raises `StoreError` naming the URL for anything else. No I/O happens until `open()`."""
    if url is None:
        return SqliteStore(default_dir / DEFAULT_FILE)
    if url.startswith("sqlite:"):
        return _sqlite(url)
    if is_postgres_url(url):
        from lamina.store.postgres import PostgresStore  # imports psycopg only when selected

        return PostgresStore.from_url(url)
    raise StoreError(_EXPECTED, url=redact(url))


def _sqlite(url: str) -> SqliteStore:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise StoreError(_EXPECTED, url=url)
    path, _, query = url[len(prefix) :].partition("?")
    if not path or path == ":memory:":
        raise StoreError(f"expected a database file path; {_EXPECTED}", url=url)
    sync: SyncMode = "enqueue"
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "sync":
            raise StoreError(f"unknown query parameter {key!r}; expected only sync", url=url)
        if value not in _SYNC_MODES:
            raise StoreError(
                f"sync: expected one of {', '.join(_SYNC_MODES)}, got {value!r}", url=url
            )
        sync = value
    return SqliteStore(Path(path), sync=sync, url=url)
