"""Opening stores: URLs, schema migrations, concurrent opens, durability across close and crash."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from lamina.errors import StoreError, StoreUnavailable
from lamina.store import NewMessage, Store, _migrations, open_store
from lamina.store.postgres import PostgresStore
from lamina.store.sqlite import SqliteStore

NOW = 1_700_000_000_000


async def test_reopening_keeps_messages_leases_and_ticks(
    new_store: Callable[[], Awaitable[Store]],
) -> None:
    first = await new_store()
    ids = await first.enqueue([NewMessage("q", b"a"), NewMessage("q", b"b")], now_ms=NOW)
    [leased] = await first.claim("q", max_messages=1, lease_ms=5_000, now_ms=NOW)
    assert leased.lease_token is not None
    await first.claim_tick("s", NOW, owner="p1")
    await first.close()

    again = await new_store()

    assert [m.id for m in await again.peek("q")] == ids
    kept = await again.get("q", leased.id)
    assert kept is not None and kept.lease_token == leased.lease_token
    assert await again.last_tick("s") == NOW
    assert await again.ack("q", leased.id, leased.lease_token)


async def test_migrations_are_applied_once(new_store: Callable[[], Awaitable[Store]]) -> None:
    first = await new_store()
    await first.enqueue([NewMessage("q", b"a")], now_ms=NOW)
    await first.close()
    await first.open()  # reopening the same object
    second = await new_store()

    assert [s.depth for s in await second.stats(["q"])] == [1]
    assert await _versions(second) == [1, 2, 3, 4, 5, 6]


async def test_concurrent_opens_of_a_new_store_both_succeed(store_url: str, tmp_path: Path) -> None:
    stores = [open_store(store_url, default_dir=tmp_path) for _ in range(3)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        await stores[0].enqueue([NewMessage("q", b"a")], now_ms=NOW)
        for s in stores:
            assert [m.body for m in await s.peek("q")] == [b"a"]
        assert await _versions(stores[1]) == [1, 2, 3, 4, 5, 6]
    finally:
        for s in stores:
            await s.close()


async def test_an_acknowledged_enqueue_survives_sigkill(
    store_url: str, tmp_path: Path, new_store: Callable[[], Awaitable[Store]]
) -> None:
    """A child process enqueues, reports the ids, and is killed with SIGKILL at once."""
    child = textwrap.dedent(
        f"""
        import asyncio, os, signal, sys
        from pathlib import Path
        from lamina.store import NewMessage, open_store

        async def main():
            store = open_store({store_url!r}, default_dir=Path({str(tmp_path)!r}))
            await store.open()
            ids = await store.enqueue(
                [NewMessage("q", b"%d" % i) for i in range(50)], now_ms={NOW}
            )
            one = await store.enqueue([NewMessage("q", b"last")], now_ms={NOW})
            print(" ".join(ids + one), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == -9, done.stderr
    acknowledged = done.stdout.split()
    assert len(acknowledged) == 51

    store = await new_store()
    assert [m.id for m in await store.peek("q", limit=100)] == acknowledged


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://localhost/db", "expected sqlite:///PATH"),
        ("sqlite://relative.db", "expected sqlite:///PATH"),
        ("sqlite:///", "expected a database file path"),
        ("sqlite:///:memory:", "expected a database file path"),
        ("sqlite:///x.db?sync=sometimes", "sync: expected one of enqueue, full, normal"),
        ("sqlite:///x.db?journal=off", "unknown query parameter 'journal'"),
        ("postgresql://h/db?lamina_schema=bad-name", "lamina_schema: expected a plain identifier"),
        ("postgresql://h/db?lamina_pool_max=many", "lamina_pool_max: expected an integer"),
        ("postgresql://h/db?lamina_pool_min=5&lamina_pool_max=2", "lamina_pool_min <="),
        ("postgresql://h/db?lamina_colour=red", "unknown query parameter 'lamina_colour'"),
        ("postgresql://h/db?colour=red", "expected a libpq URL"),
        ("postgresql://[::1/db", "expected postgresql://USER@HOST:PORT/DB"),
    ],
)
def test_a_bad_url_names_itself_and_what_was_expected(url: str, expected: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(url, default_dir=Path("unused"))

    assert expected in str(info.value)
    assert not isinstance(info.value, StoreUnavailable)


def test_passwords_stay_out_of_errors() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql://me:s3cret@h/db?lamina_schema=1x", default_dir=Path("unused"))

    assert "s3cret" not in str(info.value)
    assert "postgresql://me:***@h/db" in str(info.value)


def test_urls_select_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    default = open_store(None, default_dir=tmp_path / ".lamina")
    relative = open_store("sqlite:///data/app.db?sync=full", default_dir=tmp_path)
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db", default_dir=tmp_path)
    postgres = open_store("postgres://u@h:5433/db?lamina_schema=app1", default_dir=tmp_path)

    assert isinstance(default, SqliteStore) and default.path == tmp_path / ".lamina" / "lamina.db"
    assert isinstance(relative, SqliteStore) and relative.sync == "full"
    assert relative.path.resolve() == tmp_path / "data" / "app.db"
    assert isinstance(absolute, SqliteStore) and absolute.path == tmp_path / "abs.db"
    assert isinstance(postgres, PostgresStore) and postgres.schema == "app1"


async def test_the_default_store_creates_its_directory(tmp_path: Path) -> None:
    store = open_store(None, default_dir=tmp_path / "app" / ".lamina")
    await store.open()
    try:
        await store.enqueue([NewMessage("q", b"x")], now_ms=NOW)
    finally:
        await store.close()

    assert (tmp_path / "app" / ".lamina" / "lamina.db").is_file()


async def test_an_unreachable_postgres_server_is_unavailable(tmp_path: Path) -> None:
    store = open_store("postgresql://postgres@127.0.0.1:1/x", default_dir=tmp_path)
    started = time.monotonic()

    with pytest.raises(StoreUnavailable) as info:
        await store.open()

    assert "postgresql://postgres@127.0.0.1:1/x" in str(info.value)
    assert time.monotonic() - started < 5
    await store.close()


async def test_an_unwritable_sqlite_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = open_store(f"sqlite:///{tmp_path}/file/lamina.db", default_dir=tmp_path)

    with pytest.raises(StoreUnavailable, match=r"file/lamina\.db"):
        await store.open()
    with pytest.raises(StoreError, match="not open"):
        await store.purge("q")


async def test_a_version_2_sqlite_store_gains_span_columns_and_keeps_its_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lamina.db"
    with sqlite3.connect(path) as conn:  # the schema as Lamina with migrations 1-2 left it
        conn.execute(
            "CREATE TABLE lamina_schema_version (version INTEGER PRIMARY KEY,"
            " applied_ms INTEGER NOT NULL)"
        )
        for version, statements in enumerate(_migrations.SQLITE[:2], start=1):
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO lamina_schema_version VALUES (?, 0)", (version,))
        conn.execute(
            "INSERT INTO invocations (request_id, function_id, trigger, start_ms, duration_ms,"
            " billed_ms, cold, memory_mb, status, trace_id) VALUES"
            " ('old', 'svc.fn', 'http', 1, 1.0, 1, 0, 128, 'ok', 'abc')"
        )
    conn.close()

    store = open_store(f"sqlite:///{path}", default_dir=tmp_path)
    await store.open()
    try:
        (old,) = await store.invocations()
        assert await _versions(store) == [1, 2, 3, 4, 5, 6]
    finally:
        await store.close()

    assert (old.request_id, old.trace_id, old.span_id, old.parent_span_id, old.version) == (
        "old",
        "abc",
        None,
        None,
        None,
    )


async def test_a_schema_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lamina.db"
    first = open_store(f"sqlite:///{path}", default_dir=tmp_path)
    await first.open()
    await first.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO lamina_schema_version VALUES (99, 0)")
    conn.close()

    newer = open_store(f"sqlite:///{path}", default_dir=tmp_path)
    with pytest.raises(StoreError, match="schema is at version 99"):
        await newer.open()
    await newer.close()


async def _versions(store: Store) -> list[int]:
    """The migration versions recorded in the store, read through the backend's connection."""
    if isinstance(store, SqliteStore):
        rows = await store._call(store._read, "SELECT version FROM lamina_schema_version", ())
    else:
        assert isinstance(store, PostgresStore)
        rows = await store._fetch("SELECT version FROM lamina_schema_version ORDER BY 1", ())
    return [int(r[0]) for r in rows]
