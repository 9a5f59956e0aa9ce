"""Lamina's service tables benchmark, in one run: get, put and query operations per second from
inside a real function, on SQLite and on PostgreSQL, against the bare driver running the same
SQL statements from one Python process.

    python benchmarks/tables.py                          # both backends, prints a table
    python benchmarks/tables.py --markdown               # as Markdown, for docs/benchmarks.md
    python benchmarks/tables.py --postgres URL           # default: $LAMINA_TEST_POSTGRES_URL or
                                                         # postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/tables.py --ops 2000               # operations per measurement (default 5000)

What is measured, per backend and operation (N operations each, best of `--repeat` runs):
- bare driver: sqlite3 or psycopg 3 (autocommit, one connection, the same settings) running the
  statements the table engine runs (`_tables_sqlite._Sql`, `_tables_postgres._Sql`, the query
  statement for "partition, first 10 items") on the same schema, with the item encoded and
  decoded with orjson as any app storing JSON would, keys passed as plain strings;
- Lamina: the real platform in this process (`Platform`, local executor, a real instance
  process) and one function (benchmarks/tables_app) that runs N `lamina.table("items")` calls
  in a loop and reports its own `perf_counter` time, so the invocation's HTTP round trip is
  excluded; "incl. invoke" is N over the whole invocation's wall time as the client saw it.
The bare driver and Lamina take turns (bare, Lamina, bare, ...) so that both see the same load.
Operations: put N items (10 partitions, sort keys 00000000..), get each of them by (partition,
sort) key, query a partition's first 10 items (N times). Goal (issue 4): Lamina >= 50% of the
bare driver for get and put.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from lamina.control import Platform, PlatformOptions
from lamina.manifest import load_app
from lamina.store.tables import TableDef, open_engine, service_url

HERE = Path(__file__).parent
APP = HERE / "tables_app"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
PARTITIONS = 10  # as in tables_app/services/bench/bench.py
PAGE = 10
OPS = ("put", "get", "query")
GOAL = 0.50  # Lamina / bare driver for get and put (issue 4)
DEFS = [TableDef("items", key="pk", sort="sk")]

console = Console(stderr=True)


@dataclass
class Row:
    backend: str
    op: str
    n: int
    bare: float = 0.0  # ops/s
    lamina: float = 0.0  # ops/s inside the function
    lamina_invoke: float = 0.0  # ops/s including the invocation round trip


def item(i: int) -> dict[str, Any]:
    return {"pk": f"u{i % PARTITIONS}", "sk": f"{i:08d}", "n": i, "name": f"item {i}", "ok": True}


def libpq_url(url: str) -> str:
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.startswith("lamina_")
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "lamina_schema"]
    query.append(("lamina_schema", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- bare driver ---------------------------------------------------------------------------------
def bare_ops(execute: Callable[[str, Any], Any], statements: Any, query_sql: str) -> dict[str, Any]:
    """The three loops, over the driver's `execute(sql, params)`; each returns its seconds."""

    def put(n: int) -> float:
        rows = [(it["pk"], it["sk"], orjson.dumps(it).decode()) for it in map(item, range(n))]
        start = time.perf_counter()
        for row in rows:
            execute(statements.put, row)
        return time.perf_counter() - start

    def get(n: int) -> float:
        keys = [(f"u{i % PARTITIONS}", f"{i:08d}") for i in range(n)]
        start = time.perf_counter()
        for pk, sk in keys:
            row = execute(statements.get, (pk, sk, time.time())).fetchone()
            if row is None:
                raise AssertionError(f"missing {pk} {sk}")
            orjson.loads(row[0])
        return time.perf_counter() - start

    def query(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            rows = execute(query_sql, (f"u{i % PARTITIONS}", time.time(), PAGE + 1)).fetchall()
            if len([orjson.loads(doc) for _, _, doc in rows[:PAGE]]) != PAGE:
                raise AssertionError("short page")
        return time.perf_counter() - start

    return {"put": put, "get": get, "query": query}


class Bare:
    """The bare driver on a fresh table made by the engine (same schema and settings)."""

    def __init__(self, backend: str, url: str) -> None:
        engine = open_engine(url)
        engine.create(DEFS)
        engine.close()
        if backend == "sqlite":
            from lamina.store import _tables_sqlite as lite

            conn: Any = sqlite3.connect(
                url.removeprefix("sqlite:///"), isolation_level=None, cached_statements=256
            )
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA synchronous = NORMAL")
            statements: Any = lite._Sql.of("items")
            query_sql = lite._query_sql("items", False, False, False, False, False)
        else:
            import psycopg

            from lamina.store import _tables_postgres as pg

            conn = psycopg.connect(libpq_url(url), autocommit=True)
            schema = dict(parse_qsl(urlsplit(url).query))["lamina_schema"]
            t = f'"{schema}"."items"'
            statements = pg._Sql.of(t)
            query_sql = pg._query_sql(t, False, False, False, False, False)
        self.conn = conn
        self.ops = bare_ops(conn.execute, statements, query_sql)

    def close(self) -> None:
        self.conn.close()


# -- Lamina and the bare driver, taking turns ----------------------------------------------------
async def measure(
    store_url: str | None, state: Path, bare: Bare, n: int, repeat: int
) -> dict[str, tuple[float, float, float]]:
    """Per operation: (bare ops/s, Lamina ops/s inside, Lamina ops/s incl. invoke), each the
    best of `repeat` runs; the bare driver and Lamina take turns, so that both see the same
    load on a shared machine."""
    options = PlatformOptions(
        port=0, state_dir=state, store_url=store_url, grace_s=5.0, admin_token="bench"
    )
    platform = Platform(load_app(APP), options)
    await asyncio.wait_for(platform.start(), 60)
    result: dict[str, tuple[float, float, float]] = {}
    try:
        async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=300) as client:

            async def invoke(op: str, count: int) -> tuple[float, float]:
                start = time.perf_counter()
                response = await client.post(
                    "/2015-03-31/functions/bench.loop/invocations", json={"op": op, "n": count}
                )
                wall = time.perf_counter() - start
                body = response.json()
                if response.status_code != 200 or "x-amz-function-error" in response.headers:
                    raise SystemExit(f"the benchmark function failed: {body}")
                return float(body["seconds"]), wall

            await invoke("put", min(n, 200))  # warm: instance started, statements prepared
            bare.ops["put"](min(n, 200))
            for op in OPS:
                bare_s: list[float] = []
                runs: list[tuple[float, float]] = []
                for _ in range(repeat):
                    bare_s.append(bare.ops[op](n))
                    runs.append(await invoke(op, n))
                inside, wall = min(runs)
                result[op] = (n / min(bare_s), n / inside, n / wall)
    finally:
        await asyncio.wait_for(platform.stop(), 60)
    return result


# -- driver --------------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    meta = {
        "cpu_count": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "ops": str(args.ops),
        "repeat": str(args.repeat),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    rows: list[Row] = []
    schemas: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lamina-tables-bench-") as tmp_name:
            tmp = Path(tmp_name)
            for backend in backends:
                if backend == "sqlite":
                    store_url = None
                    bare_url = f"sqlite:///{tmp / 'bare.db'}"
                else:
                    base = f"lamina_bench_tables_{secrets.token_hex(4)}"
                    schemas += [f"{base}_bare", f"{base}_svc_bench"]
                    store_url = with_schema(args.postgres, base)
                    bare_url = with_schema(args.postgres, f"{base}_bare")
                console.print(f"{backend}: bare driver and Lamina, taking turns ...")
                state = tmp / f"state-{backend}"
                bare = Bare(backend, bare_url)
                try:
                    rates = await measure(store_url, state, bare, args.ops, args.repeat)
                finally:
                    bare.close()
                for op in OPS:
                    rows.append(Row(backend, op, args.ops, *rates[op]))
                if store_url is not None:
                    schemas.append(service_url(store_url, "bench", state).split("=")[-1])
    finally:
        if schemas:
            import psycopg
            from psycopg import sql

            with psycopg.connect(libpq_url(args.postgres), autocommit=True) as conn:
                for schema in {*schemas, base}:
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    )
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return rows, meta


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=5000, help="operations per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; best kept")
    parser.add_argument(
        "--postgres", default=os.environ.get("LAMINA_TEST_POSTGRES_URL") or DEFAULT_PG
    )
    parser.add_argument("--backend", choices=["both", "sqlite", "postgres"], default="both")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.ops < PAGE or args.repeat < 1:
        parser.error(f"--ops must be >= {PAGE} and --repeat >= 1")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rows, meta = asyncio.run(run(args))

    headers = [
        "backend",
        "operation",
        "ops",
        "bare driver ops/s",
        "Lamina in function ops/s",
        "ratio",
        "Lamina incl. invoke ops/s",
    ]
    lines = []
    for r in rows:
        ratio = r.lamina / r.bare
        goal = (
            f" {'meets' if ratio >= GOAL else 'misses'} >= {GOAL:.0%}"
            if r.op in ("get", "put")
            else ""
        )
        lines.append(
            [
                r.backend,
                r.op,
                str(r.n),
                f"{r.bare:.0f}",
                f"{r.lamina:.0f}",
                f"{ratio:.2f}{goal}",
                f"{r.lamina_invoke:.0f}",
            ]
        )
    if args.markdown:
        print("| " + " | ".join(headers) + " |")
        print("|" + "---|" * len(headers))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        table = Table(*headers, title="service table operations per second")
        for line in lines:
            table.add_row(*line)
        Console(width=max(120, Console().width)).print(table)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
