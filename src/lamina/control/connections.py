"""How many PostgreSQL connections an app can hold at most, and the cap that refuses more.

Every instance opens its connections to its service's schema (for `lamina.table` and
`lamina.sql` together) from one pool of at most `concurrency` connections, opened on demand
and kept while the instance lives; a function runs at most `max_instances` instances. So, with
a PostgreSQL store, the app never holds more than

    platform store pool (lamina_pool_max, default 10)
    + 1 per service with tables (the platform's own: creating, sweeping, the admin API)
    + sum over functions of max_instances * concurrency

connections. `connection_bound` computes it (pure); the platform logs it at start, shows it on
`GET /status`, and refuses to start when `lamina up --max-db-connections N` is lower.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lamina.errors import PlatformError
from lamina.manifest import AppSpec, FunctionSpec
from lamina.store import is_postgres_url

__all__ = ["ConnectionBound", "app_connection_bound", "connection_bound"]


@dataclass(frozen=True, slots=True)
class ConnectionBound:
    store_pool: int  # the platform store's pool at most
    service_tables: int  # the platform's connections to service schemas
    functions: Mapping[str, int]  # function id -> max_instances * concurrency

    @property
    def total(self) -> int:
        return self.store_pool + self.service_tables + sum(self.functions.values())

    def check(self, cap: int | None) -> None:
        """Raise PlatformError naming the largest parts when the bound exceeds `cap`."""
        if cap is None or self.total <= cap:
            return
        largest = sorted(self.functions.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        shown = ", ".join(f"{fid} {n}" for fid, n in largest)
        raise PlatformError(
            f"the app may hold up to {self.total} PostgreSQL connections, over"
            f" --max-db-connections {cap}: platform store pool {self.store_pool}, service"
            f" tables {self.service_tables}, functions (max_instances x concurrency)"
            f" {sum(self.functions.values())}, largest {shown}. Lower max_instances or"
            " concurrency, or the store pool (lamina_pool_max=N in the store URL)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "max": self.total,
            "store_pool": self.store_pool,
            "service_tables": self.service_tables,
            "functions": dict(self.functions),
        }


def connection_bound(
    functions: Iterable[FunctionSpec], *, store_pool: int, service_tables: int
) -> ConnectionBound:
    return ConnectionBound(
        store_pool=store_pool,
        service_tables=service_tables,
        functions={fn.id: fn.max_instances * fn.concurrency for fn in functions},
    )


def app_connection_bound(app: AppSpec, store_url: str | None) -> ConnectionBound | None:
    """The bound of `app` on the store `store_url` (parsed, not connected); None on SQLite,
    which has no server connections to count."""
    if not is_postgres_url(store_url):
        return None
    from lamina.store.postgres import PostgresStore

    return connection_bound(
        app.functions().values(),
        store_pool=PostgresStore.from_url(store_url).max_size,
        service_tables=sum(1 for service in app.services.values() if service.tables),
    )
