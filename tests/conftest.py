"""Fixtures for every test layer: a PostgreSQL database for this test session.

`postgres_url` is the URL of a database created for this test session and dropped at its end.
The server is the one `LAMINA_TEST_POSTGRES_URL` names (any database on it; the user must be
allowed to CREATE DATABASE), else a throwaway server that the `pgserver` package (test extra)
starts in a temporary directory. Tests that need PostgreSQL fail, never skip, when neither works.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

ENV_VAR = "LAMINA_TEST_POSTGRES_URL"
_HOW_TO_FIX = (
    f"set {ENV_VAR}=postgresql://USER@HOST:PORT/DB to a server where USER may CREATE DATABASE"
    " (for example postgresql://postgres@127.0.0.1:5432/postgres), or install the test extra"
    ' (pip install -e ".[test]") so that pgserver can start a throwaway server'
)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database for this session: `postgresql://.../lamina_test_<random>`."""
    server: Any = None
    base = os.environ.get(ENV_VAR, "")
    if not base:
        server = _start_pgserver(tmp_path_factory)
        base = server.get_uri()
    name = f"lamina_test_{secrets.token_hex(5)}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        if server is not None:
            server.cleanup()
        pytest.fail(f"PostgreSQL at {_shown(base)} is not usable: {exc}\nTo fix: {_HOW_TO_FIX}")
    try:
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    finally:
        try:
            with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        finally:
            if server is not None:
                server.cleanup()


def _start_pgserver(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # pgserver and platformdirs warn about their environment (e.g. XDG_RUNTIME_DIR not set);
    # that is not our code, and warnings are errors in this suite.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError as exc:
            pytest.fail(
                f"{ENV_VAR} is not set and pgserver is not installed ({exc}).\n"
                f"To fix: {_HOW_TO_FIX}"
            )
        try:
            return pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="delete")
        except Exception as exc:
            pytest.fail(
                f"{ENV_VAR} is not set and pgserver could not start PostgreSQL: {exc!r}\n"
                f"To fix: {_HOW_TO_FIX}"
            )


def _shown(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> str:
    """A store URL naming a PostgreSQL schema of its own in this session's test database."""
    return with_query(postgres_url, lamina_schema=f"t_{secrets.token_hex(6)}")
