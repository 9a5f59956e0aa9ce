"""Finding a running platform from the CLI: flags, environment, or APP_DIR/.lamina/."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from lamina.errors import ClientError

__all__ = ["Target", "find_target"]


@dataclass(frozen=True, slots=True)
class Target:
    gateway_url: str
    admin_url: str
    token: str | None


def find_target(app_dir: Path, url: str | None, admin_url: str | None, token: str | None) -> Target:
    """Flags win, then LAMINA_URL / LAMINA_ADMIN_URL / LAMINA_ADMIN_TOKEN, then the files a
    running `lamina up` writes in APP_DIR/.lamina/."""
    url = url or os.environ.get("LAMINA_URL")
    admin_url = admin_url or os.environ.get("LAMINA_ADMIN_URL")
    token = token or os.environ.get("LAMINA_ADMIN_TOKEN")
    state = app_dir / ".lamina"
    runtime = state / "platform.json"
    if (not url or not admin_url) and runtime.exists():
        try:
            data = orjson.loads(runtime.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ClientError(
                f"{runtime}: not valid JSON ({exc}); is another tool writing it?"
            ) from exc
        url = url or data.get("gateway_url")
        admin_url = admin_url or data.get("admin_url")
    if not url or not admin_url:
        raise ClientError(
            f"no running platform found: {runtime} does not exist. Start one with "
            f"`lamina up {app_dir}`, or pass --url/--admin-url (or set LAMINA_URL)."
        )
    if not token and (state / "admin-token").exists():
        token = (state / "admin-token").read_text().strip()
    return Target(url.rstrip("/"), admin_url.rstrip("/"), token)
