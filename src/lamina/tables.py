"""`lamina.table(name)`: function code's handle on one of its own service's tables.

The platform puts the service's table location and specs in every function's environment
(`LAMINA_TABLES_URL`, `LAMINA_TABLES`); the first call reads them and the database driver is
imported and connected only then, so `import lamina` stays cheap. Calls go straight from the
instance process to the database (one connection per instance, reused). The API itself is
`lamina.store.tables.Table`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lamina.store.tables import Table, Tables

__all__ = ["table"]

_tables: Tables | None = None


def table(name: str) -> Table:
    """The table `name` of the calling function's service. Raises `lamina.TableNotFound` for a
    name the service does not declare (a function reaches only its own service's tables)."""
    global _tables
    if _tables is None:
        from lamina.store.tables import from_env

        _tables = from_env(os.environ)
    return _tables.table(name)
