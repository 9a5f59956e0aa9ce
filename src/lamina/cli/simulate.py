"""`lamina simulate`: replay an invocation trace through keep-alive policies, or write a
synthetic trace shaped like Azure Functions 2019 (see `lamina.scaling.synthetic`).

The replay is `lamina.scaling.simulate.replay`, which runs the invoker's own keep-alive code
on the trace's times; this module only reads and writes CSV and prints the table.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from lamina.cli._common import fail, out
from lamina.errors import ClientError
from lamina.scaling.keepalive import HybridSpec
from lamina.scaling.simulate import FixedKeepAlive, Invocation, Policy, SimulationResult, replay
from lamina.scaling.synthetic import generate

__all__ = [
    "COLUMNS",
    "PERCENTILES",
    "SIMULATE_EXAMPLE",
    "parse_policy",
    "read_trace",
    "result_row",
    "results_table",
    "simulate",
    "write_trace",
]

SIMULATE_EXAMPLE = (
    "Example: lamina simulate --generate trace.csv --functions 200 --hours 24 --seed 1 && "
    "lamina simulate trace.csv --policy fixed:10m --policy hybrid"
)
COLUMNS = ("function", "timestamp", "duration", "memory")  # s, s, MB
PERCENTILES = (50, 75, 90, 99)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smh]?)")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_policy(text: str) -> Policy:
    """`hybrid`, or `fixed:DURATION` with DURATION like 90s, 10m, 2h or 600 (seconds)."""
    if text == "hybrid":
        return HybridSpec()
    kind, _, value = text.partition(":")
    match = _DURATION.fullmatch(value)
    if kind != "fixed" or match is None:
        raise ClientError(
            f"--policy: expected 'hybrid' or 'fixed:DURATION' (e.g. fixed:10m, fixed:90s), "
            f"got {text!r}"
        )
    return FixedKeepAlive(float(match.group(1)) * _UNIT_S[match.group(2)])


def _number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ClientError(f"{where}: {column}: expected a number >= 0, got {text!r}")
    return value


def read_trace(path: Path, lines: Iterable[str]) -> Iterator[Invocation]:
    """Rows of a trace CSV with the header `function,timestamp,duration,memory`."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header) != COLUMNS:
        raise ClientError(f"{path}:1: expected the header {','.join(COLUMNS)}, got {header!r}")
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if not row:
            continue
        if len(row) != len(COLUMNS):
            raise ClientError(f"{where}: expected {len(COLUMNS)} columns, got {len(row)}")
        function = row[0].strip()
        if not function:
            raise ClientError(f"{where}: function: expected a function id, got ''")
        start, duration, memory = (
            _number(v, where, c) for v, c in zip(row[1:], COLUMNS[1:], strict=True)
        )
        yield Invocation(function, start, duration, memory)


def write_trace(path: Path, invocations: Iterable[Invocation]) -> int:
    """Write a trace CSV; returns the number of rows."""
    rows = 0
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for inv in invocations:
            writer.writerow(
                (inv.function, f"{inv.start_s:g}", f"{inv.duration_s:g}", f"{inv.memory_mb:g}")
            )
            rows += 1
    return rows


def result_row(result: SimulationResult) -> dict[str, float | int | str]:
    """One policy's figures, as printed by `--json`."""
    row: dict[str, float | int | str] = {
        "policy": result.policy,
        "functions": len(result.functions),
        "invocations": result.invocations,
        "cold_starts": result.cold_starts,
    }
    for p in PERCENTILES:
        row[f"cold_pct_p{p}"] = round(result.cold_pct_at(p), 3)
    row["idle_gb_s"] = round(result.idle_gb_s, 3)
    return row


def results_table(results: list[SimulationResult]) -> Table:
    """The comparison table `lamina simulate` prints."""
    table = Table(box=box.SIMPLE_HEAD, title="Cold starts by function percentile; idle memory")
    table.add_column("policy")
    table.add_column("invocations", justify="right")
    table.add_column("cold starts", justify="right")
    for p in PERCENTILES:
        table.add_column(f"cold % p{p}", justify="right")
    table.add_column("idle GB·s", justify="right")
    for result in results:
        table.add_row(
            result.policy,
            f"{result.invocations:,}",
            f"{result.cold_starts:,}",
            *(f"{result.cold_pct_at(p):.1f}" for p in PERCENTILES),
            f"{result.idle_gb_s:,.1f}",
        )
    return table


def simulate(
    trace: Annotated[
        Path | None,
        typer.Argument(help="Trace CSV: function,timestamp,duration,memory (s, s, MB)."),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            "-p",
            help="hybrid, or fixed:DURATION (90s, 10m, 2h); repeat to compare "
            "(default: fixed:10m and hybrid).",
        ),
    ] = None,
    end: Annotated[
        float | None,
        typer.Option(help="Count idle time up to this many seconds (default: the trace's end)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per policy.")
    ] = False,
    generate_to: Annotated[
        Path | None,
        typer.Option("--generate", help="Write a synthetic trace to this CSV instead."),
    ] = None,
    functions: Annotated[int, typer.Option(min=1, help="Functions in the generated trace.")] = 200,
    hours: Annotated[float, typer.Option(min=0.001, help="Hours the generated trace spans.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed of the generated trace.")] = 1,
) -> None:
    """Replay a trace through keep-alive policies: cold-start % by function percentile and the
    memory-time instances spent idle.

    With --generate, write a seeded synthetic trace with the Azure Functions 2019 shapes
    (rates, LogNormal durations, Burr memory) instead; docs/scaling.md has the parameters.
    """
    if generate_to is not None:
        rows = write_trace(generate_to, generate(functions, hours, random.Random(seed)))
        out.print(f"wrote {rows:,} invocations of {functions} functions to {generate_to}")
        return
    if trace is None:
        raise fail("give a trace CSV to replay, or --generate OUT.csv to write one", 2)
    try:
        policies = [parse_policy(p) for p in policy or ["fixed:10m", "hybrid"]]
        with trace.open(newline="") as file:
            invocations = list(read_trace(trace, file))
    except ClientError as exc:
        raise fail(str(exc), 2) from None
    except OSError as exc:
        raise fail(f"{trace}: cannot read: {exc.strerror}", 2) from None
    results = [replay(invocations, p, end) for p in policies]
    if as_json:
        for result in results:
            out.print(json.dumps(result_row(result)), highlight=False, soft_wrap=True)
    else:
        out.print(results_table(results))
