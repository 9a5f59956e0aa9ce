"""`lamina deploy`, `lamina versions`, `lamina alias set|ls|rm`, `lamina rollback`: ship an app
to a running platform and steer its traffic, through the admin API (control/deploy_api.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from lamina.cli._common import AdminUrlOpt, AppDir, TokenOpt, admin_call, fail, out, target
from lamina.control.bundle import make_bundle

__all__ = [
    "DEPLOY_EXAMPLE",
    "ROLLBACK_EXAMPLE",
    "VERSIONS_EXAMPLE",
    "alias_app",
    "deploy",
    "rollback",
    "versions",
]

DEPLOY_EXAMPLE = "Example: lamina deploy examples/shop --admin-url http://prod:8081 --token $TOKEN"
VERSIONS_EXAMPLE = "Example: lamina versions orders.create"
ROLLBACK_EXAMPLE = "Example: lamina rollback orders.create --to 5"

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON.")]
FunctionArg = Annotated[str, typer.Argument(help="Function id, e.g. orders.create.")]

alias_app = typer.Typer(
    help="Aliases: named pointers at function versions, with an optional weighted canary.",
    epilog="Example: lamina alias set orders.create live --version 7 --canary 8 --weight 10",
    no_args_is_help=True,
)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def deploy(
    app_dir: Annotated[Path, typer.Argument(help="The app folder (with lamina.yaml) to ship.")],
    promote: Annotated[
        bool,
        typer.Option(
            "--promote/--no-promote",
            help="Move each function's `live` alias to its new version (default), or only "
            "create the versions.",
        ),
    ] = True,
    as_json: JsonOpt = False,
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Bundle APP_DIR (without .lamina/, .venv/, __pycache__/, .git/) and deploy it to a
    running platform: each function whose code or config changed gets a new version."""
    if not (app_dir / "lamina.yaml").is_file():
        raise fail(f"{app_dir}: no lamina.yaml here; deploy takes an app folder", 2)
    where = target(app_dir, "-", admin_url, token)
    try:
        bundle = make_bundle(app_dir)
    except OSError as exc:
        raise fail(f"{app_dir}: cannot bundle the app: {exc}") from None
    answer = admin_call(
        where,
        "POST",
        "/deploys",
        params={"promote": str(promote).lower()},
        content=bundle,
        timeout_s=300,
    ).json()
    if as_json:
        out.print_json(data=answer)
        return
    table = Table(box=box.SIMPLE_HEAD)
    for header in ("function", "version", ""):
        table.add_column(header)
    for fn in answer["functions"]:
        table.add_row(fn["id"], str(fn["version"]), "new" if fn["changed"] else "unchanged")
    out.print(table)
    size_kb = len(bundle) / 1024
    live = "live moved to the new versions" if answer["promoted"] else "live not moved"
    out.print(
        f"deploy {answer['deploy']} of {answer['app']} ({size_kb:.1f} KB, "
        f"bundle {answer['bundle'][:12]}): {live}; {answer['changes']}",
        highlight=False,
    )


def versions(
    function_id: FunctionArg,
    as_json: JsonOpt = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List a function's versions, oldest first, and the aliases that point at each."""
    where = target(app_dir, "-", admin_url, token)
    listed = admin_call(where, "GET", f"/functions/{function_id}/versions").json()
    aliases = admin_call(where, "GET", "/aliases", params={"function": function_id}).json()
    if as_json:
        out.print_json(data=listed)
        return
    if not listed:
        out.print(f"{function_id} has no versions yet: `lamina deploy` makes them.")
        return
    pointing: dict[int, list[str]] = {}
    for a in aliases:
        pointing.setdefault(a["version"], []).append(a["name"])
        if a["canary_version"] is not None and a["canary_weight"]:
            pointing.setdefault(a["canary_version"], []).append(
                f"{a['name']} (canary {a['canary_weight']}%)"
            )
    table = Table(box=box.SIMPLE_HEAD)
    headers = ("version", "created (UTC)", "handler", "MB", "timeout", "code", "bundle", "aliases")
    for header in headers:
        table.add_column(header)
    for v in listed:
        table.add_row(
            str(v["version"]),
            _when(v["created_ms"]),
            str(v["handler"]),
            str(v["memory"]),
            f"{v['timeout']:g} s",
            v["code_hash"][:12],
            "available" if v["available"] else "pruned",
            ", ".join(pointing.get(v["version"], [])),
        )
    out.print(table)


def rollback(
    function_id: FunctionArg,
    alias: Annotated[str, typer.Option("--alias", help="The alias to move back.")] = "live",
    to: Annotated[
        int | None,
        typer.Option("--to", min=1, help="The version to move to (default: the previous one)."),
    ] = None,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Move an alias back to the version it pointed at before, or to --to VERSION, at once
    (canary dropped)."""
    where = target(app_dir, "-", admin_url, token)
    body = {"version": to} if to is not None else {}
    path = f"/functions/{function_id}/aliases/{alias}/rollback"
    moved = admin_call(where, "POST", path, json=body).json()
    out.print(
        f"{function_id}:{alias} -> version {moved['version']} (was {moved['previous_version']})",
        highlight=False,
    )


@alias_app.command(
    "set", epilog="Example: lamina alias set orders.create live --version 7 --canary 8 --weight 10"
)
def alias_set(
    function_id: FunctionArg,
    name: Annotated[str, typer.Argument(help="Alias name, e.g. live or beta.")],
    version: Annotated[int, typer.Option("--version", min=1, help="The version it serves.")],
    canary: Annotated[
        int | None, typer.Option("--canary", min=1, help="A version to send --weight % to.")
    ] = None,
    weight: Annotated[
        int, typer.Option("--weight", min=0, max=100, help="Percent of traffic to --canary.")
    ] = 0,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Point an alias at a version, optionally splitting traffic with a canary version."""
    if weight and canary is None:
        raise fail("--weight needs --canary", 2)
    if canary is not None and not weight:
        raise fail("--canary needs --weight (percent of traffic, 1..100)", 2)
    where = target(app_dir, "-", admin_url, token)
    body: dict[str, Any] = {"version": version, "canary": canary, "weight": weight}
    moved = admin_call(where, "PUT", f"/functions/{function_id}/aliases/{name}", json=body).json()
    split = (
        f", {moved['canary_weight']}% to version {moved['canary_version']}"
        if moved["canary_version"] is not None
        else ""
    )
    out.print(f"{function_id}:{name} -> version {moved['version']}{split}", highlight=False)


@alias_app.command("ls", epilog="Example: lamina alias ls orders.create")
def alias_ls(
    function_id: Annotated[str | None, typer.Argument(help="Only this function's.")] = None,
    as_json: JsonOpt = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List aliases: the version each serves, its canary and weight, where it was before."""
    where = target(app_dir, "-", admin_url, token)
    params = {"function": function_id} if function_id else None
    aliases = admin_call(where, "GET", "/aliases", params=params).json()
    if as_json:
        out.print_json(data=aliases)
        return
    if not aliases:
        out.print("No aliases yet: `lamina deploy` creates `live`.")
        return
    table = Table(box=box.SIMPLE_HEAD)
    for header in ("function", "alias", "version", "canary", "previous", "updated (UTC)"):
        table.add_column(header)
    for a in aliases:
        canary = (
            f"{a['canary_version']} ({a['canary_weight']}%)"
            if a["canary_version"] is not None
            else ""
        )
        previous = "" if a["previous_version"] is None else str(a["previous_version"])
        table.add_row(
            a["function"], a["name"], str(a["version"]), canary, previous, _when(a["updated_ms"])
        )
    out.print(table)


@alias_app.command("rm", epilog="Example: lamina alias rm orders.create beta")
def alias_rm(
    function_id: FunctionArg,
    name: Annotated[str, typer.Argument(help="The alias to remove.")],
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Remove an alias; the versions only it pointed at drain and stop."""
    where = target(app_dir, "-", admin_url, token)
    admin_call(where, "DELETE", f"/functions/{function_id}/aliases/{name}")
    out.print(f"removed {function_id}:{name}", highlight=False)
