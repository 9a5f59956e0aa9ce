"""`lamina.table(name)` and `lamina.sql()`: function code's handles on its own service's database.

The platform puts the service's database location and table specs in every function's
environment (`LAMINA_TABLES_URL`, `LAMINA_TABLES`, `LAMINA_DB_CONNECTIONS`); the first call
reads them and the database driver is imported and connected only then, so `import lamina`
stays cheap. Calls go straight from the instance process to the database over a small pool of
connections (at most one per concurrent invocation, shared by tables and SQL). The table API is
`lamina.store.tables.Table`; the SQL connection is the driver's own (sqlite3 or psycopg 3).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lamina.store.tables import Table, Tables

__all__ = ["sql", "table"]

_tables: Tables | None = None


def _own() -> Tables:
    global _tables
    if _tables is None:
        from lamina.store.tables import from_env

        _tables = from_env(os.environ)
    return _tables


def table(name: str) -> Table:
    """The table `name` of the calling function's service. Raises `lamina.TableNotFound` for a
    name the service does not declare (a function reaches only its own service's tables)."""
    return _own().table(name)


def sql(*, autocommit: bool = False) -> AbstractContextManager[Any]:
    """A DB-API 2.0 connection to the calling function's service's own database, for a `with`
    block: `with lamina.sql() as conn: conn.execute(...)`.

    SQLite (the default store): a `sqlite3.Connection` to the service's file, `?` parameters.
    PostgreSQL: a `psycopg.Connection` whose `search_path` is the service's schema, `%s`
    parameters. The block is one transaction: committed when it ends, rolled back when it
    raises (on SQLite `BEGIN IMMEDIATE`: it waits for and then holds the write lock); a block
    inside a block is a savepoint. With `autocommit=True` every statement commits on its own.
    The connection comes from the instance's pool and goes back to it when the block ends;
    keep it only inside the block."""
    return _own().engine.connection(autocommit=autocommit)
