"""A service's own SQL database (`lamina.sql()` is `TableEngine.connection`) on a real database:
SQLite (a file per service in tmp_path) and PostgreSQL (a schema per service)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lamina.store.tables import TableDef, TableEngine, Tables, open_engine, service_url

OpenEngine = Callable[..., TableEngine]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def open_service(store_url: str | None, tmp_path: Path) -> Iterator[OpenEngine]:
    """Opens a service's database as an instance does (its namespace created, as at start)."""
    opened: list[TableEngine] = []

    def make(service: str = "shop", pool_size: int = 1, name: str = "lamina:test") -> TableEngine:
        url = service_url(store_url, service, tmp_path / "state")
        engine = open_engine(url, pool_size=pool_size, application_name=name)
        opened.append(engine)
        engine.create([])
        return engine

    yield make
    for engine in opened:
        engine.close()


def p(store_url: str | None, statement: str) -> str:
    """`statement` with the driver's placeholder style (`?` on SQLite, `%s` on psycopg)."""
    return statement if store_url is None else statement.replace("?", "%s")


def rows(engine: TableEngine, store_url: str | None, statement: str, *params: Any) -> list[Any]:
    """Read in autocommit: on SQLite a transaction would wait for another block's write lock."""
    with engine.connection(autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(p(store_url, statement), params).fetchall()]


def test_ddl_and_dml_run_in_the_services_own_namespace(
    open_service: OpenEngine, store_url: str | None
) -> None:
    shop = open_service("shop")
    with shop.connection() as conn:
        conn.execute("CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL)")
        conn.execute(p(store_url, "INSERT INTO notes (id, body) VALUES (?, ?)"), (1, "hello"))
        conn.execute(p(store_url, "INSERT INTO notes (id, body) VALUES (?, ?)"), (2, "world"))
    again = open_service("shop")  # another instance of the same service sees the commit
    assert rows(again, store_url, "SELECT id, body FROM notes ORDER BY id") == [
        (1, "hello"),
        (2, "world"),
    ]
    if store_url is not None:  # PostgreSQL: the unqualified name is in the service's schema
        schema = rows(shop, store_url, "SELECT current_schema()")[0][0]
        assert schema.endswith("_svc_shop")
        found = rows(
            shop, store_url, "SELECT table_schema FROM information_schema.tables"
            " WHERE table_name = 'notes'",
        )  # fmt: skip
        assert found == [(schema,)]


def test_a_service_cannot_see_another_services_tables_by_name(
    open_service: OpenEngine, store_url: str | None
) -> None:
    shop, billing = open_service("shop"), open_service("billing")
    with shop.connection() as conn:
        conn.execute("CREATE TABLE secrets (v text)")
        conn.execute("INSERT INTO secrets VALUES ('shop only')")
    missing = sqlite3.OperationalError if store_url is None else psycopg.errors.UndefinedTable
    with pytest.raises(missing, match="secrets"), billing.connection() as conn:
        conn.execute("SELECT v FROM secrets")
    with billing.connection() as conn:  # its own table of the same name is another table
        conn.execute("CREATE TABLE secrets (v text)")
    assert rows(billing, store_url, "SELECT v FROM secrets") == []
    assert rows(shop, store_url, "SELECT v FROM secrets") == [("shop only",)]


def test_a_block_commits_at_its_end_and_rolls_back_when_it_raises(
    open_service: OpenEngine, store_url: str | None
) -> None:
    shop, other = open_service("shop"), open_service("shop")
    with shop.connection() as conn:
        conn.execute("CREATE TABLE t (n integer)")
    with pytest.raises(RuntimeError), shop.connection() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("handler failed")
    assert rows(other, store_url, "SELECT n FROM t") == []
    with shop.connection() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
        assert rows(other, store_url, "SELECT n FROM t") == []  # not committed yet
    assert rows(other, store_url, "SELECT n FROM t") == [(2,)]
    with shop.connection(autocommit=True) as conn:
        conn.execute("INSERT INTO t VALUES (3)")
        assert rows(other, store_url, "SELECT n FROM t ORDER BY n") == [(2,), (3,)]


def test_a_nested_block_is_a_savepoint(open_service: OpenEngine, store_url: str | None) -> None:
    shop = open_service("shop")
    with shop.connection() as conn:
        conn.execute("CREATE TABLE t (n integer)")
    with shop.connection() as outer:
        outer.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError), shop.connection() as inner:
            assert inner is outer  # one connection: a pool of one never waits on itself
            inner.execute("INSERT INTO t VALUES (2)")
            raise ValueError("undo the inner block only")
        with shop.connection() as inner:
            inner.execute("INSERT INTO t VALUES (3)")
    assert rows(shop, store_url, "SELECT n FROM t ORDER BY n") == [(1,), (3,)]


def test_table_calls_inside_a_block_join_its_transaction(
    open_service: OpenEngine, store_url: str | None
) -> None:
    engine = open_service("shop")
    tables = Tables("shop", {"orders": TableDef("orders", key="id")}, engine)
    tables.create()
    orders = tables.table("orders")
    with pytest.raises(RuntimeError), engine.connection() as conn:
        orders.put({"id": "o1", "total": 5})
        assert orders.get("o1") == {"id": "o1", "total": 5}  # the block's own write
        conn.execute("SELECT 1")
        raise RuntimeError("roll back the put too")
    assert orders.get("o1") is None
    with engine.connection():
        orders.put({"id": "o2"})
    assert orders.get("o2") == {"id": "o2"}


def test_blocks_at_once_use_at_most_pool_size_postgresql_connections(
    postgres_url: str, postgres_schema_url: str, tmp_path: Path
) -> None:
    url = service_url(postgres_schema_url, "shop", tmp_path)
    engine = open_engine(url, pool_size=2, application_name="lamina:pool-test")
    engine.create([])
    with engine.connection() as conn:
        conn.execute("CREATE TABLE t (n integer)")
    inside = threading.Barrier(3)
    release = threading.Event()
    errors: list[BaseException] = []

    def hold(n: int) -> None:
        try:
            with engine.connection() as conn:
                conn.execute("INSERT INTO t VALUES (%s)", (n,))
                if n < 2:
                    inside.wait(10)
                    release.wait(10)
        except BaseException as exc:
            errors.append(exc)

    def connections() -> int:
        # the schema's database (not the URL without its query: pgserver's host is in it)
        with psycopg.connect(postgres_url) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                " AND datname = current_database()",
                ("lamina:pool-test",),
            ).fetchone()
        assert row is not None
        return int(row[0])

    threads = [threading.Thread(target=hold, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    inside.wait(10)  # two blocks hold two connections
    assert connections() == 2
    third = threading.Thread(target=hold, args=(2,))  # waits for one of them
    third.start()
    release.set()
    for t in [*threads, third]:
        t.join(10)
    assert errors == []
    assert connections() == 2  # kept for the next calls, never a third
    assert rows(engine, url, "SELECT count(*) FROM t") == [(3,)]
    engine.close()
