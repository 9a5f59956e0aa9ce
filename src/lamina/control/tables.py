"""The platform's side of service tables and databases: create them at start, tell each
function where its own service's database is, delete expired items in the background, read
them for the admin API.

Isolation is structural: a function's environment holds only its own service's location
(`env_for`), so naming another service's table fails in the function with `TableNotFound`
naming the owner. The sweeper is a mechanism on the platform clock: every `sweep_interval_s`
it deletes expired items of every table with a `ttl`, `sweep_batch` rows per statement.
Database calls are blocking; they run in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from pathlib import Path
from typing import Any

from lamina.clock import Clock
from lamina.errors import LaminaError, TableError, TableNotFound
from lamina.manifest import AppSpec
from lamina.store._tablekeys import MAX_INT
from lamina.store.tables import (
    Page,
    TableDef,
    Tables,
    open_engine,
    service_url,
    tables_env,
)

__all__ = ["ServiceNotFound", "ServiceTables"]

log = logging.getLogger(__name__)


class ServiceNotFound(TableError):
    """Raised when the admin API names a service the app does not have."""


class ServiceTables:
    """Every service's tables of one app; `await start()` creates them, `await stop()` ends
    the sweeper and closes the connections."""

    def __init__(
        self,
        app: AppSpec,
        store_url: str | None,
        state_dir: Path,
        clock: Clock,
        *,
        sweep_interval_s: float = 60.0,  # seconds between sweeps of expired items, > 0
        sweep_batch: int = 1000,  # expired rows deleted per statement, >= 1
    ) -> None:
        self._clock = clock
        self._store_url = store_url
        self._state_dir = state_dir
        self.sweep_interval_s = sweep_interval_s
        self.sweep_batch = sweep_batch
        self._urls = {name: service_url(store_url, name, state_dir) for name in app.services}
        self._defs = {
            name: {
                table: TableDef(table, key=spec.key, sort=spec.sort, ttl=spec.ttl)
                for table, spec in service.tables.items()
            }
            for name, service in app.services.items()
        }
        self._owner = {table: name for name, defs in self._defs.items() for table in defs}
        self._open: dict[str, Tables] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.swept = asyncio.Event()  # set after each background sweep; tests wait on it

    # -- the functions' view -----------------------------------------------------------------
    def env_for(self, service: str, connections: int = 1) -> dict[str, str]:
        """Environment variables for `service`'s functions: its own database's location and
        tables' specs; of other services only which table names they own (for the error
        message); `connections`: how many an instance may open (its concurrency)."""
        others = {t: s for t, s in self._owner.items() if s != service}
        defs = list(self._defs[service].values())
        return tables_env(service, self._urls[service], defs, others, connections)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Create every service's namespace (its own SQL database, `lamina.sql()`) and every
        declared table that does not exist yet. Services without tables are not kept open."""
        for service, defs in self._defs.items():
            engine = open_engine(self._urls[service], application_name="lamina:platform")
            tables = Tables(service, defs, engine, self._clock)
            self._open[service] = tables
            try:
                await asyncio.to_thread(tables.create)
                if not defs:
                    del self._open[service]
                    await asyncio.to_thread(tables.close)
            except TableError as exc:
                await self.stop()
                raise TableError(exc.table, f"service {service!r}: {exc.message}") from None
            except BaseException:
                await self.stop()
                raise
        if any(d.ttl for defs in self._defs.values() for d in defs.values()):
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())
        if self._open:
            log.info("service tables ready", extra={"tables": len(self._owner)})

    async def apply(self, app: AppSpec) -> list[str]:
        """Serve `app`'s tables from now on (a deploy): create the namespaces and tables of
        services that are new or whose tables changed; returns those services. Tables that
        exist are kept as they are (their data too)."""
        changed = []
        for name, service in app.services.items():
            defs = {
                table: TableDef(table, key=spec.key, sort=spec.sort, ttl=spec.ttl)
                for table, spec in service.tables.items()
            }
            if name in self._defs and defs == self._defs[name]:
                continue
            url = self._urls.get(name) or service_url(self._store_url, name, self._state_dir)
            engine = open_engine(url, application_name="lamina:platform")
            tables = Tables(name, defs, engine, self._clock)
            try:
                await asyncio.to_thread(tables.create)
            except BaseException:
                await asyncio.to_thread(tables.close)
                raise
            old = self._open.pop(name, None)
            if old is not None:
                await asyncio.to_thread(old.close)
            if defs:
                self._open[name] = tables
            else:
                await asyncio.to_thread(tables.close)
            self._urls[name], self._defs[name] = url, defs
            changed.append(name)
        self._owner = {table: name for name, defs in self._defs.items() for table in defs}
        if self._sweeper is None and any(d.ttl for v in self._defs.values() for d in v.values()):
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())
        if changed:
            log.info("service tables applied", extra={"services": changed})
        return changed

    async def stop(self) -> None:
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        opened, self._open = list(self._open.values()), {}
        for tables in opened:
            await asyncio.to_thread(tables.close)

    # -- expiry ------------------------------------------------------------------------------
    async def sweep_once(self) -> int:
        """Delete every item expired by now (the platform clock); how many were deleted."""
        deleted = 0
        for service, tables in list(self._open.items()):
            for defn in tables.defs.values():
                if defn.ttl is None:
                    continue
                swept = 0
                while True:
                    count = await asyncio.to_thread(
                        tables.engine.sweep, defn.name, self._clock.wall(), self.sweep_batch
                    )
                    swept += count
                    if count < self.sweep_batch:
                        break
                if swept:
                    log.info(
                        "expired items deleted",
                        extra={"service": service, "table": defn.name, "count": swept},
                    )
                deleted += swept
        return deleted

    async def _sweep_loop(self) -> None:
        while True:
            await self._clock.sleep(self.sweep_interval_s)
            try:
                await self.sweep_once()
            except LaminaError as exc:  # the database is down: try again next time
                log.warning("sweeping expired items failed", extra={"error": str(exc)})
            self.swept.set()

    # -- the admin API's view ----------------------------------------------------------------
    def _tables(self, service: str, table: str) -> Tables:
        if service not in self._defs:
            shown = ", ".join(repr(s) for s in self._defs) or "none"
            raise ServiceNotFound(table, f"no service {service!r} in this app; services: {shown}")
        tables = self._open.get(service)
        if tables is None or table not in tables.defs:
            known = sorted(self._defs[service])
            raise TableNotFound(
                table, service=service, known=known, owner=self._owner.get(table, "")
            )
        return tables

    async def describe(self) -> list[dict[str, Any]]:
        """Every table: service, name, key schema and live item count."""
        result = []
        for service, defs in self._defs.items():
            for defn in defs.values():
                table = self._tables(service, defn.name).table(defn.name)
                items = await asyncio.to_thread(table.count)
                result.append({"service": service, "table": defn.name, **defn.to_json(),
                               "items": items})  # fmt: skip
        return result

    async def scan(self, service: str, table: str, *, limit: int, cursor: str | None) -> Page:
        found = self._tables(service, table).table(table)
        return await asyncio.to_thread(found.scan, limit, cursor)

    async def get(self, service: str, table: str, key: str, sort: str | None) -> Any:
        """The item whose key reads `key` (and `sort`): as text, or as a number when it reads
        as one (a URL cannot tell "7" from 7, so both are tried, text first)."""
        found = self._tables(service, table).table(table)
        if found.defn.sort is None and sort is not None:
            raise TableError(table, "sort: the table has no sort key")
        if found.defn.sort is not None and sort is None:
            raise TableError(table, f"sort: the table has a sort key ({found.defn.sort!r})")
        keys: list[Any] = (
            _readings(key)
            if sort is None
            else [(p, s) for p in _readings(key) for s in _readings(sort)]
        )
        for candidate in keys:
            item = await asyncio.to_thread(found.get, candidate)
            if item is not None:
                return item
        return None


def _readings(text: str) -> list[Any]:
    """`text` as a key: itself, then the number it reads as, if any ("7" -> 7, "1.5" -> 1.5)."""
    for kind in (int, float):
        try:
            number = kind(text)
        except ValueError:
            continue
        usable = math.isfinite(number) and abs(number) <= MAX_INT
        return [text, number] if usable else [text]
    return [text]
