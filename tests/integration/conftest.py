"""Integration tests: the real platform on a free loopback port, real instance processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
def ray_cluster() -> Iterator[str]:
    """A single-node Ray cluster for the whole session (2 CPUs), with this process connected
    to it as the driver; its address, for `lamina up --ray-address` in another process."""
    import ray

    ray.init(
        address="local",  # a new cluster, whatever else runs Ray on this machine
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


@pytest.fixture(params=["local", "ray"])
def executor(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The behavioural tests that take this run on both executor backends: the platform
    options (`run_platform(app, **executor)`) that select one."""
    if request.param == "ray":
        return {"executor": "ray", "ray_address": request.getfixturevalue("ray_cluster")}
    return {"executor": "local"}


@pytest.fixture(scope="session")
def venv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment cache for the session's tests, as one user's apps share theirs."""
    return tmp_path_factory.mktemp("venvs")
