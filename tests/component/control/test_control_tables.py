"""The platform's side of service tables on a real database, with a FakeClock: creation at
start, the environment a function gets, and the background sweep of expired items."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lamina.clock import FakeClock
from lamina.control.tables import ServiceTables
from lamina.errors import TableError, TableNotFound
from lamina.manifest import AppSpec, parse_app
from lamina.store.tables import from_env

MANIFEST = """
app: shop
services:
  shop:
    path: .
    tables:
      sessions: {key: id, ttl: expires_at}
      orders: {key: id}
  billing:
    path: .
"""


def app_of(root: Path, text: str = MANIFEST) -> AppSpec:
    return parse_app(text, root=root)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def service_tables(
    tmp_path: Path, store_url: str | None, clock: FakeClock
) -> AsyncIterator[ServiceTables]:
    tables = ServiceTables(app_of(tmp_path), store_url, tmp_path / ".lamina", clock)
    await tables.start()
    yield tables
    await tables.stop()


async def test_expired_items_are_deleted_in_the_background(
    service_tables: ServiceTables, clock: FakeClock
) -> None:
    shop = from_env(service_tables.env_for("shop"), clock)  # what a shop function gets
    sessions = shop.table("sessions")
    now = clock.wall()
    for i in range(5):
        sessions.put({"id": f"short{i}", "expires_at": now + 30})
    sessions.put({"id": "long", "expires_at": now + 3600})
    sessions.put({"id": "forever"})
    clock.advance(30)
    assert sessions.count() == 2  # hidden at once, deleted later
    service_tables.swept.clear()
    clock.advance(service_tables.sweep_interval_s)
    await asyncio.wait_for(service_tables.swept.wait(), 10)
    clock.advance(-1000)  # back before the expiry: only rows that still exist can show up
    assert sorted(i["id"] for i in sessions.scan()) == ["forever", "long"]
    shop.close()


async def test_a_function_gets_only_its_own_services_tables(
    service_tables: ServiceTables, clock: FakeClock
) -> None:
    shop = from_env(service_tables.env_for("shop"), clock)
    billing = from_env(service_tables.env_for("billing"), clock)
    shop.table("orders").put({"id": "o1"})
    with pytest.raises(TableNotFound, match="its tables: none") as info:
        billing.table("orders")
    assert info.value.owner == "shop"
    assert (
        service_tables.env_for("billing")["LAMINA_TABLES_URL"]
        != (service_tables.env_for("shop")["LAMINA_TABLES_URL"])
    )
    shop.close()


async def test_start_refuses_a_changed_key_naming_the_service(
    tmp_path: Path, store_url: str | None, clock: FakeClock, service_tables: ServiceTables
) -> None:
    changed = MANIFEST.replace("orders: {key: id}", "orders: {key: order_id}")
    again = ServiceTables(app_of(tmp_path, changed), store_url, tmp_path / ".lamina", clock)
    with pytest.raises(TableError) as info:
        await again.start()
    assert str(info.value).startswith(
        "table 'orders': service 'shop': it was created with key 'id' and sort key None;"
        " lamina.yaml now says key 'order_id'"
    )
