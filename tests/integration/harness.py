"""Helpers for integration tests: an app on disk and the real platform on a free loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from lamina.clock import Clock
from lamina.control import Platform, PlatformOptions
from lamina.manifest import load_app

HANDLERS = Path(__file__).parent / "handlers"


def write_app(
    directory: Path, functions: dict[str, dict[str, Any]], env: dict[str, str] | None = None
) -> Path:
    """An app with one service `svc` whose code is tests/integration/handlers."""
    manifest = {
        "app": "test",
        "services": {"svc": {"path": str(HANDLERS), "env": env or {}, "functions": functions}},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return directory


@contextlib.asynccontextmanager
async def run_platform(
    app_dir: Path, clock: Clock | None = None, **options: Any
) -> AsyncIterator[Platform]:
    opts = PlatformOptions(
        port=0, state_dir=app_dir / ".lamina", grace_s=options.pop("grace_s", 5.0), **options
    )
    platform = Platform(load_app(app_dir), opts, clock=clock)
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()


@contextlib.asynccontextmanager
async def client_for(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        yield client
