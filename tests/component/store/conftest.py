"""Store fixtures: every `store` test runs on SQLite (a file in `tmp_path`) and on PostgreSQL
(a schema of its own in the session's database)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from lamina.store import Store, open_store


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming an empty store of its own: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'lamina.db'}"
    base: str = request.getfixturevalue("postgres_url")
    return with_query(base, lamina_schema=f"t_{secrets.token_hex(6)}")


@pytest.fixture
async def new_store(
    store_url: str, tmp_path: Path
) -> AsyncIterator[Callable[[], Awaitable[Store]]]:
    """Opens another store object on the same database (file or schema); closes them all."""
    opened: list[Store] = []

    async def make() -> Store:
        s = open_store(store_url, default_dir=tmp_path)
        opened.append(s)
        await s.open()
        return s

    yield make
    for s in opened:
        await s.close()


@pytest.fixture
async def store(new_store: Callable[[], Awaitable[Store]]) -> Store:
    return await new_store()
