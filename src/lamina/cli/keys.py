"""`lamina keys create|ls|revoke`: the gateway's API keys, via a running platform's admin API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lamina.cli._common import AdminUrlOpt, AppDir, TokenOpt, admin_call, fail, out, target

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="API keys for `auth: api_key` routes: create (shown once), list, revoke.",
    epilog="Example: lamina keys create mobile-app --rate 10 --burst 20 --quota 10000",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON.")]


@keys_app.command(
    "create",
    epilog=(
        "Example: lamina keys create mobile-app --rate 10 --burst 20 --quota 10000\n\n"
        "Then: curl -H 'x-api-key: lk_...' localhost:8080/orders/1"
    ),
)
def create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    rate: Annotated[
        float | None, typer.Option("--rate", help="Requests per second (token bucket).")
    ] = None,
    burst: Annotated[
        int | None, typer.Option("--burst", help="Requests at once (default: the rate).")
    ] = None,
    quota: Annotated[
        int | None, typer.Option("--quota", help="Requests per UTC day; then 429.")
    ] = None,
    as_json: JsonOpt = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create a key and print it. It is shown only now: the platform keeps only its hash."""
    if burst is not None and rate is None:
        raise fail("--burst needs --rate", 2)
    body: dict[str, Any] = {"name": name, "rate": rate, "burst": burst, "quota_per_day": quota}
    where = target(app_dir, "-", admin_url, token)
    created = admin_call(where, "POST", "/keys", json=body).json()
    if as_json:
        out.print_json(data=created)
        return
    out.print(f"id:  {created['id']}", highlight=False)
    out.print(f"key: {created['key']}", highlight=False, markup=False)
    out.print("Keep the key now: it cannot be shown again.", highlight=False)


@keys_app.command("ls", epilog="Example: lamina keys ls --all")
def ls(
    show_all: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonOpt = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List the API keys (never the keys themselves) with their plans and today's usage."""
    where = target(app_dir, "-", admin_url, token)
    keys = admin_call(where, "GET", "/keys").json()
    if not show_all:
        keys = [k for k in keys if not k["revoked"]]
    if as_json:
        out.print_json(data=keys)
        return
    if not keys:
        out.print("no API keys: create one with `lamina keys create NAME`", highlight=False)
        return
    view = Table("id", "name", "rate/s", "burst", "quota/day", "used today", "created", "state")
    for k in keys:
        view.add_row(
            k["id"],
            k["name"],
            "-" if k["rate"] is None else f"{k['rate']:g}",
            "-" if k["burst"] is None else str(k["burst"]),
            "-" if k["quota_per_day"] is None else str(k["quota_per_day"]),
            str(k.get("used_today", 0)),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(k["created_ms"] / 1000)),
            "revoked" if k["revoked"] else "active",
        )
    out.print(view)


@keys_app.command("revoke", epilog="Example: lamina keys revoke key_3f9c0a1b2c3d4e5f")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, as `lamina keys ls` shows it.")],
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Revoke a key: requests with it are refused (403) from now on."""
    where = target(app_dir, "-", admin_url, token)
    admin_call(where, "DELETE", f"/keys/{key_id}")
    out.print(f"revoked {key_id}", highlight=False)
