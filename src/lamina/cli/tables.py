"""`lamina table ls|get|scan`: look at the data in a running platform's service tables, via
its admin API (read only)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from lamina.cli._common import AdminUrlOpt, AppDir, TokenOpt, admin_call, err, fail, out, target

__all__ = ["table_app"]

table_app = typer.Typer(
    help="Service tables: list them, get one item, scan the items.",
    epilog="Example: lamina table scan shop.orders --limit 20",
    no_args_is_help=True,
)

TableArg = Annotated[str, typer.Argument(help="The table as SERVICE.TABLE, e.g. shop.orders.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON.")]


def _split(name: str) -> tuple[str, str]:
    service, dot, table = name.partition(".")
    if not dot or not service or not table:
        raise fail(f"expected SERVICE.TABLE (e.g. shop.orders), got {name!r}", 2)
    return urllib.parse.quote(service, safe=""), urllib.parse.quote(table, safe="")


def _line(item: Any) -> None:
    out.print(orjson.dumps(item).decode(), highlight=False, markup=False, soft_wrap=True)


@table_app.command("ls", epilog="Example: lamina table ls -C my-app")
def ls(
    as_json: JsonOpt = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List every service table: its key schema and how many live items it holds."""
    where = target(app_dir, "-", admin_url, token)
    tables = admin_call(where, "GET", "/tables").json()
    if as_json:
        out.print_json(data=tables)
        return
    if not tables:
        out.print("no tables: no service declares `tables:` in lamina.yaml", highlight=False)
        return
    view = Table("table", "key", "sort", "ttl", "items")
    for t in tables:
        view.add_row(
            f"{t['service']}.{t['table']}",
            t["key"],
            t["sort"] or "-",
            t["ttl"] or "-",
            str(t["items"]),
        )
    out.print(view)


@table_app.command("get", epilog="Example: lamina table get shop.orders o-1001")
def get(
    name: TableArg,
    key: Annotated[str, typer.Argument(help="The item's key (tried as text, then as a number).")],
    sort: Annotated[
        str | None, typer.Option("--sort", help="The sort key, for tables that have one.")
    ] = None,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Print one item as JSON."""
    service, table = _split(name)
    where = target(app_dir, "-", admin_url, token)
    path = f"/tables/{service}/{table}/items/{urllib.parse.quote(key, safe='')}"
    item = admin_call(where, "GET", path, params={"sort": sort} if sort is not None else None)
    out.print_json(data=item.json())


@table_app.command(
    "scan", epilog="Example: lamina table scan shop.orders --limit 20 --cursor CURSOR"
)
def scan(
    name: TableArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Items per page.")] = 100,
    cursor: Annotated[
        str | None, typer.Option(help="Resume after a page: the cursor it printed.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Follow cursors to the last page.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each page as a JSON object with its cursor.")
    ] = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Print items in key order, one JSON object per line (the next page's cursor: on stderr)."""
    service, table = _split(name)
    where = target(app_dir, "-", admin_url, token)
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = admin_call(where, "GET", f"/tables/{service}/{table}/items", params=params).json()
        if as_json:
            _line(page)
        else:
            for item in page["items"]:
                _line(item)
        cursor = page["cursor"]
        if cursor is None:
            return
        if not every:
            if not as_json:
                err.print(f"more: --cursor {cursor}", highlight=False, soft_wrap=True)
            return
