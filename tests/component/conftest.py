"""Component-test fixtures: a `store` on each backend (SQLite file, PostgreSQL schema).

The session's PostgreSQL database (`postgres_url`) comes from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from lamina.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming an empty store of its own: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'lamina.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


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
