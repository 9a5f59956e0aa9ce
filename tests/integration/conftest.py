"""Integration tests: the real platform on a free loopback port, real instance processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import write_app


@pytest.fixture
def app_dir(tmp_path: Path) -> Callable[..., Path]:
    def make(functions: dict[str, dict[str, Any]], env: dict[str, str] | None = None) -> Path:
        return write_app(tmp_path / "app", functions, env)

    return make


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The store a test runs on: None for the default SQLite, or a PostgreSQL schema's URL."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture(scope="session")
def venv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment cache for the session's tests, as one user's apps share theirs."""
    return tmp_path_factory.mktemp("venvs")
