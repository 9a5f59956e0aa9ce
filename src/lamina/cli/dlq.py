"""`lamina dlq ls|show|redrive|purge`: dead letters of a running platform, via its admin API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from lamina.cli._common import AdminUrlOpt, AppDir, TokenOpt, admin_call, fail, out, target

__all__ = ["dlq_app"]

dlq_app = typer.Typer(
    help="Dead letters: events that failed every attempt (list, show, redrive, purge).",
    epilog="Example: lamina dlq ls --source async:orders.notify",
    no_args_is_help=True,
)

SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        "-s",
        help="Source queue: async:FUNCTION_ID, queue:NAME or sub:TOPIC:FUNCTION_ID.",
    ),
]
_PAYLOAD_WIDTH = 60


def _short(value: Any, width: int = _PAYLOAD_WIDTH) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


@dlq_app.command("ls", epilog="Example: lamina dlq ls -C my-app --source async:orders.notify")
def ls(
    source: SourceOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List dead letters, oldest first."""
    where = target(app_dir, "-", admin_url, token)
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if source:
        params["source"] = source
    response = admin_call(where, "GET", "/dlq", params=params)
    items = response.json()
    if as_json:
        out.print_json(data=items)
        return
    total = response.headers.get("x-total-count", str(len(items)))
    if not items:
        out.print(f"no dead letters{f' from {source}' if source else ''}", highlight=False)
        return
    table = Table(title=f"dead letters: {len(items)} of {total}")
    table.add_column("source", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("error")
    table.add_column("attempts", justify="right")
    table.add_column("last attempt", no_wrap=True)
    table.add_column("payload")
    for item in items:
        error = f"{item.get('error_type') or '-'}: {item.get('error_message') or ''}"
        table.add_row(
            item["source"],
            item["id"],
            _short(error),
            str(item["attempts"]),
            item.get("last_attempt") or "-",
            _short(item.get("payload")),
        )
    out.print(table)


@dlq_app.command(epilog="Example: lamina dlq show async:orders.notify 3f1c0a4e-...")
def show(
    source: Annotated[str, typer.Argument(help="Source queue, as `lamina dlq ls` shows it.")],
    event_id: Annotated[str, typer.Argument(metavar="ID", help="The dead letter's event id.")],
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show one dead letter as JSON: payload, error, attempts and their times."""
    where = target(app_dir, "-", admin_url, token)
    out.print_json(data=admin_call(where, "GET", f"/dlq/{source}/{event_id}").json())


@dlq_app.command(
    epilog="Example: lamina dlq redrive --source async:orders.notify --id 3f1c0a4e-..."
)
def redrive(
    source: SourceOpt = None,
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="Only this event (repeatable).")
    ] = None,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Put dead letters back in their source queue for normal delivery (all, or --id ones)."""
    where = target(app_dir, "-", admin_url, token)
    body: dict[str, Any] = {}
    if source:
        body["source"] = source
    if ids:
        body["ids"] = list(ids)
    result = admin_call(where, "POST", "/dlq/redrive", json=body).json()
    for item in result["redriven"]:
        out.print(f"redriven {item['source']} {item['id']}", highlight=False)
    out.print(f"{len(result['redriven'])} dead letter(s) redriven", highlight=False)
    if result["missing"]:
        raise fail(f"no dead letter with id {', '.join(result['missing'])}")


@dlq_app.command(epilog="Example: lamina dlq purge --source async:orders.notify --yes")
def purge(
    source: Annotated[
        str,
        typer.Option(
            "--source", "-s", help="Source queue whose dead letters are deleted (required)."
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Delete every dead letter of one source queue."""
    where = target(app_dir, "-", admin_url, token)
    if not yes and not typer.confirm(f"Delete every dead letter from {source}?"):
        raise fail("not purged", 1)
    result = admin_call(where, "DELETE", "/dlq", params={"source": source}).json()
    out.print(f"purged {result['purged']} dead letter(s) from {source}", highlight=False)
