"""`lamina cost`: what a running platform's invocations cost at pay-per-use prices, beside what
always-on instances sized for the observed peaks would cost (admin `GET /cost`)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich import box
from rich.table import Table

from lamina.cli._common import AdminUrlOpt, AppDir, TokenOpt, admin_call, out, target
from lamina.cli.observe import FunctionArg

__all__ = ["COST_EXAMPLE", "cost"]

COST_EXAMPLE = (
    "Example: lamina cost --since 7d --by function --gb-second-price 0.0000133334"
    " --request-price 0.20"
)


def cost(
    function_id: FunctionArg = None,
    since: Annotated[
        str,
        typer.Option(help="Window start: a duration back (30s, 10m, 2h, 7d) or an ISO 8601 time."),
    ] = "1d",
    by: Annotated[
        Literal["service", "function"], typer.Option(help="One row per service or per function.")
    ] = "service",
    gb_second_price: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            show_default=False,
            help="USD per GB-second (default: 0.0000166667, AWS Lambda x86).",
        ),
    ] = None,
    request_price: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            show_default=False,
            help="USD per million requests (default: 0.20, AWS Lambda).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Requests, GB-seconds and cost per service, and the saving over always-on instances.

    The always-on side keeps as many instances of each function as it ever ran at once (its
    peak concurrency), at its memory, for the whole window, at the same GB-second price.
    Throttled requests are not billed.
    """
    where = target(app_dir, "-", admin_url, token)
    params: dict[str, Any] = {"since": since, "by": by}
    for key, value in (
        ("function", function_id),
        ("gb_second_price", gb_second_price),
        ("request_price", request_price),
    ):
        if value is not None:
            params[key] = value
    report = admin_call(where, "GET", "/cost", params=params).json()
    if as_json:
        out.print_json(data=report)
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    prices = report["prices"]
    out.print(
        f"{_utc(report['since_ms'])} to {_utc(report['until_ms'])} UTC"
        f" ({report['window_s'] / 3600:,.1f} h), ${_price(prices['gb_second'])} per GB-s,"
        f" ${_price(prices['request_per_million'])} per 1M requests",
        highlight=False,
    )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column(report["by"])
    for header in _HEADERS:  # two-word headers take two lines: the figures keep their width
        table.add_column(header, justify="right")
    for row in report["rows"]:
        table.add_row(row["name"], *_cells(row, str(row["peak_concurrency"])))
    table.add_section()
    total = report["total"]
    table.add_row("total", *_cells(total, ""), style="bold")
    out.print(table)
    saving, cost = total["saving"], total["cost"]
    if total["always_on_cost"] > 0 and cost > 0:
        ratio = total["always_on_cost"] / cost
        times = f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.2f}"
        verb = "saves" if saving >= 0 else "costs"
        out.print(
            f"Pay per use {verb} {_money(abs(saving))}: always-on instances would cost"
            f" {times} times as much.",
            highlight=False,
        )


_HEADERS = ("requests", "GB-s", "cost", "peak", "always-on\nGB-s", "always-on\ncost", "saving")


def _cells(row: dict[str, Any], peak: str) -> list[str]:
    return [
        f"{row['requests']:,}",
        _amount(row["gb_seconds"]),
        _money(row["cost"]),
        peak,
        _amount(row["always_on_gb_seconds"]),
        _money(row["always_on_cost"]),
        _money(row["saving"]),
    ]


def _money(value: float) -> str:
    """Dollars: cents from $1 up, below that enough decimals to show a single request."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}${value:,.2f}" if value >= 1 else f"{sign}${value:.8f}"


def _amount(value: float) -> str:
    return f"{value:,.1f}" if value >= 100 else f"{value:.4f}"


def _price(value: float) -> str:
    """0.0000166667 rather than 1.66667e-05; at least cents (0.20)."""
    text = f"{value:.10f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _utc(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
