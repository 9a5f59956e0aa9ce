"""The platform's settings, built once from CLI flags and the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["PlatformOptions"]


@dataclass(frozen=True, slots=True)
class PlatformOptions:
    host: str = "127.0.0.1"
    port: int = 8080  # gateway port; 0 picks a free port
    admin_port: int | None = None  # None: port + 1 (or a free port when port is 0)
    state_dir: Path | None = None  # None: APP_DIR/.lamina
    store_url: str | None = None  # None: SQLite in STATE_DIR; or sqlite:///PATH, postgresql://...
    record: bool = True  # keep invocation records and logs in the store; invocation metrics
    retention_days: float = 7.0  # records and logs older than this are deleted (> 0)
    event_poll_s: float = 1.0  # how often consumers look for events made due elsewhere
    admin_token: str | None = None  # None: read or create STATE_DIR/admin-token
    grace_s: float = 30.0  # how long in-flight invocations may run on after SIGTERM
    region: str = "us-east-1"  # AWS_REGION given to functions
    cgroups: bool = True  # memory limits through cgroups where the machine allows
    max_db_connections: int | None = None  # refuse to start when the app may hold more
    max_bundle_bytes: int = 50 * 1024 * 1024  # largest app bundle `lamina deploy` may upload
    keep_deploys: int = 10  # bundles of the last N deploys kept (>= 1); aliased ones always
    otlp_endpoint: str | None = None  # OTLP/HTTP traces URL to export spans to; None: no export
    venv_dir: Path | None = None  # services' environments; None: `venvs.default_venv_dir()`
    executor: str = "local"  # "local" processes or "ray" actors (docs/ray.md)
    ray_address: str | None = None  # with executor "ray": "local" (default), "auto" or an address
    http: str = "uvicorn"  # the gateway's HTTP server: "uvicorn" or "granian" (Rust I/O threads)
    http_threads: int = 1  # with http "granian": its Rust I/O threads
    reuse_port: bool = False  # SO_REUSEPORT: several planes on one machine share the gateway port
    plane_ttl_s: float = 15.0  # PostgreSQL: a plane silent this long gives its instances back
