"""Throughput of one versus two control planes (`lamina up` processes) on one PostgreSQL
database, in one run:

    python benchmarks/planes.py                       # prints a table
    python benchmarks/planes.py --markdown            # the same as Markdown
    python benchmarks/planes.py --postgres URL        # default: $LAMINA_TEST_POSTGRES_URL or
                                                      # postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/planes.py --planes 1,2,3 --duration 10 --events 4000
    python benchmarks/planes.py --reuse-port          # gateway workers: every plane on one port
    python benchmarks/planes.py --reuse-port --no-record --events 0 --max-instances 20

For each plane count P, P `lamina up` processes serve one copy of benchmarks/app from the same
APP_DIR with `--store` naming a fresh schema of the same database (dropped at the end), so
they share invocation records, logs, queues and instance leases, as in production:
- warm HTTP: `wrk` against GET /hello of every plane at once (connections split evenly), for
  `--duration` seconds after a warm-up; requests/s summed over the planes, p99 the worst one.
  With `--reuse-port` every plane listens on the same port (`lamina up --reuse-port`), the
  kernel spreads one `wrk`'s connections over them: the planes are gateway workers;
- async events: `--events` Event invocations of bench.hello through the Invoke API, split
  evenly over the planes, 64 in flight; "accepted/s" until the last 202, "done/s" until the
  function's async queue is empty (every event ran and was acknowledged).
Load generator and planes share this machine: on a small one they compete for CPU, so the
figures show how planes share the store, not how they scale across machines. Needs `wrk`
(apt-get install wrk). Every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from events import Postgres, opened
from rich.console import Console
from rich.table import Table
from run import free_port, process, wait_http, wrk

from lamina.events import async_queue

HERE = Path(__file__).parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
FUNCTION = "bench.hello"
IN_FLIGHT = 64  # concurrent Event invocations while sending
console = Console(stderr=True)


@dataclass
class Row:
    planes: int
    http_rps: float = 0.0
    http_p99_ms: float = 0.0
    http_errors: float = 0.0
    accepted_per_s: float = 0.0
    done_per_s: float = 0.0


@contextlib.contextmanager
def planes(
    count: int,
    store_url: str,
    *,
    reuse_port: bool = False,
    record: bool = True,
    max_instances: int | None = None,
) -> Iterator[list[str]]:
    """`count` planes on one copy of the bench app; yields their gateway URLs (with
    `reuse_port`, the one URL they share). `max_instances` overrides hello's."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        app = Path(tmp) / "app"
        shutil.copytree(HERE / "app", app)
        if max_instances is not None:
            manifest = yaml.safe_load((app / "lamina.yaml").read_text())
            manifest["services"]["bench"]["functions"]["hello"]["max_instances"] = max_instances
            (app / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        urls = []
        shared = free_port()
        for _ in range(count):
            port, admin = (shared if reuse_port else free_port()), free_port()
            cmd = [sys.executable, "-m", "lamina", "up", str(app), "--port", str(port)]
            cmd += ["--admin-port", str(admin), "--store", store_url, "--log-level", "WARNING"]
            cmd += ["--reuse-port"] if reuse_port else []
            cmd += [] if record else ["--no-record"]
            stack.enter_context(process(cmd))
            urls.append(f"http://127.0.0.1:{port}")
        for url in dict.fromkeys(urls):
            wait_http(f"{url}/hello")
        yield list(dict.fromkeys(urls))


def http(urls: list[str], connections: int, duration_s: int, row: Row) -> None:
    share = max(1, connections // len(urls))
    with ThreadPoolExecutor(len(urls)) as pool:
        list(pool.map(lambda u: wrk(f"{u}/hello", share, 2), urls))  # warm-up
        results = list(pool.map(lambda u: wrk(f"{u}/hello", share, duration_s), urls))
    row.http_rps = sum(r["rps"] for r in results)
    row.http_p99_ms = max(r["p99_ms"] for r in results)
    row.http_errors = sum(r["errors"] for r in results)


async def events(urls: list[str], store_url: str, n: int, row: Row) -> None:
    clients = [httpx.AsyncClient(base_url=u, timeout=30) for u in urls]
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def send(i: int) -> None:
        async with sem:
            response = await clients[i % len(clients)].post(
                f"/2015-03-31/functions/{FUNCTION}/invocations",
                json={"i": i},
                headers={"X-Amz-Invocation-Type": "Event"},
            )
            response.raise_for_status()

    with tempfile.TemporaryDirectory() as tmp:
        async with opened(store_url, Path(tmp)) as store:
            start = time.perf_counter()
            async with asyncio.timeout(60 + n / 20):
                await asyncio.gather(*(send(i) for i in range(n)))
                row.accepted_per_s = n / (time.perf_counter() - start)
                while (await store.stats([async_queue(FUNCTION)]))[0].depth:
                    await asyncio.sleep(0.05)
            row.done_per_s = n / (time.perf_counter() - start)
    for client in clients:
        await client.aclose()


def table(rows: list[Row]) -> Table:
    out = Table(title="One vs several control planes on one PostgreSQL (benchmarks/planes.py)")
    for column in (
        "planes",
        "warm HTTP req/s",
        "p99 ms",
        "non-2xx",
        "events accepted/s",
        "events done/s",
    ):
        out.add_column(column, justify="right")
    for r in rows:
        out.add_row(
            str(r.planes),
            f"{r.http_rps:,.0f}",
            f"{r.http_p99_ms:.1f}",
            f"{r.http_errors:.0f}",
            f"{r.accepted_per_s:,.0f}",
            f"{r.done_per_s:,.0f}",
        )
    return out


def markdown(rows: list[Row]) -> str:
    lines = [
        "| planes | warm HTTP req/s | p99 ms | non-2xx | events accepted/s | events done/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.planes} | {r.http_rps:,.0f} | {r.http_p99_ms:.1f} | {r.http_errors:.0f} |"
        f" {r.accepted_per_s:,.0f} | {r.done_per_s:,.0f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres", default=os.environ.get("LAMINA_TEST_POSTGRES_URL") or DEFAULT_PG
    )
    parser.add_argument("--planes", default="1,2", help="plane counts to measure, e.g. 1,2,3")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections in all")
    parser.add_argument("--events", type=int, default=3000, help="Event invocations per run")
    parser.add_argument(
        "--reuse-port", action="store_true", help="every plane on one port (gateway workers)"
    )
    parser.add_argument(
        "--no-record", dest="record", action="store_false", help="lamina up --no-record"
    )
    parser.add_argument(
        "--max-instances",
        type=int,
        help="hello's max_instances (default: the app's, 10), shared by all planes",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH; install it (Debian: apt-get install wrk)")
    pg = Postgres(args.postgres)
    console.print(f"PostgreSQL {asyncio.run(pg.check())} at {args.postgres}")
    rows = []
    try:
        for count in (int(c) for c in args.planes.split(",")):
            row = Row(count)
            url = pg.fresh(f"planes{count}_{secrets.token_hex(2)}")
            with planes(
                count,
                url,
                reuse_port=args.reuse_port,
                record=args.record,
                max_instances=args.max_instances,
            ) as urls:
                console.print(f"{count} plane(s): warm HTTP for {args.duration} s ...")
                http(urls, args.connections, args.duration, row)
                if args.events:
                    console.print(f"{count} plane(s): {args.events} async events ...")
                    asyncio.run(events(urls, url, args.events, row))
            rows.append(row)
    finally:
        asyncio.run(pg.drop())
    if args.markdown:
        print(markdown(rows))
    else:
        Console().print(table(rows))


if __name__ == "__main__":
    main()
