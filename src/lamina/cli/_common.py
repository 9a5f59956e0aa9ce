"""What every `lamina` command shares: consoles, the error exit, discovery options and the
admin API call."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from lamina.cli.discovery import Target, find_target
from lamina.errors import ClientError

__all__ = [
    "AdminUrlOpt",
    "AppDir",
    "TokenOpt",
    "UrlOpt",
    "admin_call",
    "err",
    "fail",
    "out",
    "read_text_arg",
    "target",
]

_PIPE_WIDTH = 200  # columns
# Output piped or sent to a file is not cut to rich's default 80 columns (COLUMNS still rules).
out = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else _PIPE_WIDTH)
err = Console(stderr=True)

AppDir = Annotated[
    Path, typer.Option("--app-dir", "-C", help="App folder of the running platform.")
]
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="Gateway URL (default: from APP_DIR/.lamina).")
]
AdminUrlOpt = Annotated[str | None, typer.Option("--admin-url", help="Admin API URL.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", help="Admin token (default: LAMINA_ADMIN_TOKEN or APP_DIR/.lamina/admin-token)."
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on stderr; raise the returned Exit to leave with `code`."""
    # soft_wrap: one error stays one line (file:line: key path: message) for grep and logs,
    # whatever the terminal width.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def target(app_dir: Path, url: str | None, admin_url: str | None, token: str | None) -> Target:
    try:
        return find_target(app_dir, url, admin_url, token)
    except ClientError as exc:
        raise fail(str(exc)) from None


def admin_call(
    where: Target,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
    content: bytes | None = None,
    timeout_s: float = 30,
) -> httpx.Response:
    """Call the admin API (a JSON body, or raw `content`); any failure becomes a one-line
    error and exit code 1."""
    try:
        response = httpx.request(
            method,
            f"{where.admin_url}{path}",
            params=params,
            json=json,
            content=content,
            headers={"Authorization": f"Bearer {where.token or ''}"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach the admin API at {where.admin_url}: {exc}") from None
    if response.status_code == 401:
        raise fail("the admin API refused the token (see --token or LAMINA_ADMIN_TOKEN)")
    if response.status_code >= 400:
        try:
            message = response.json().get("message") or response.text
        except (ValueError, AttributeError):
            message = response.text
        raise fail(f"{message} (HTTP {response.status_code})")
    return response


def read_text_arg(value: str, option: str) -> str:
    """`value` itself, or the content of the file `@path` names."""
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text()
    except OSError as exc:
        raise fail(f"{option} {value}: cannot read {path}: {exc.strerror}", 2) from None
    except UnicodeDecodeError as exc:
        raise fail(f"{option} {value}: {path} is not UTF-8 text: {exc}", 2) from None
