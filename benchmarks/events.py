"""Lamina's event benchmark, in one run: queue messages per second end to end (enqueue ->
handler ran -> acknowledged) with batch sizes 1 and 10, on SQLite and on PostgreSQL, against
the bare store doing the same insert/claim/delete cycle from one Python process.

    python benchmarks/events.py                          # both backends, prints a table
    python benchmarks/events.py --markdown               # as Markdown, for docs/benchmarks.md
    python benchmarks/events.py --postgres URL           # default: $LAMINA_TEST_POSTGRES_URL or
                                                         # postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/events.py --messages 1000          # N per measurement (default 2000 / 5000)

What is measured, per backend and batch size B (1 and 10):
- bare store: `enqueue` one message per call (as `Queues.send` does) N times, then
  `claim(max_messages=B)` and `ack` each message until the queue is empty, from one process,
  twice: "seq", every call awaited in turn; "conc", with Lamina's concurrency (100 enqueues
  in flight, then 10 workers each looping claim -> ack each; 10 = the consumer's capacity).
  "conc" is the fair baseline: SQLite group-commits concurrent enqueues, and PostgreSQL has
  a pool of 10 connections, which one await at a time leaves unused. Reported: N / (enqueue
  + claim/ack time), and N / claim/ack time alone (the delivery-only baseline).
- Lamina end to end: the real platform in this process (`Platform`, the local executor, real
  instance processes) with a no-op function per queue trigger (batch_size B, batch_window 0,
  default max_instances 10 / concurrency 1). N `queues.send` calls, 100 at a time with
  `asyncio.gather`; the clock runs from the first send to the N-th acknowledgement
  (`Queues.delivered`). The instances are warmed up before.
- Lamina delivery only: N messages stored in one bulk `enqueue` with a delay, so they all
  become visible at the same instant T while the consumers run; the clock runs from T to the
  N-th acknowledgement (at most one `event_poll_s` of discovery latency included).
After each Lamina measurement the queue's depth must be 0 and nothing failed or dead-lettered.

SQLite is a fresh file in a temporary directory (default `sync=enqueue`); PostgreSQL gets a
fresh schema per phase (`lamina_schema=`), dropped at the end. Every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lamina.control import Platform, PlatformOptions
from lamina.events.queues import queue_store_name
from lamina.manifest import load_app
from lamina.store import NewMessage, Store, open_store

HERE = Path(__file__).parent
APP = HERE / "events_app"
QUEUES = {1: "bench1", 10: "bench10"}  # batch size -> queue name in events_app/lamina.yaml
DEFAULT_MESSAGES = {1: 2000, 10: 5000}
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
SEND_CHUNK = 100  # concurrent sends per gather
CAPACITY = 10  # batches in flight per queue: the functions' max_instances * concurrency
BULK_CHUNK = 500  # messages per enqueue call when pre-filling
WARMUP = 100  # messages per queue before measuring (instances started, statements prepared)
GOAL = 0.30  # Lamina / bare store with batch 10 (issue 3)
MIN_RATE = 20.0  # msgs/s: slower than this is a failure, so every wait gets a deadline

console = Console(stderr=True)


@dataclass
class Row:
    backend: str
    batch: int
    messages: int
    bare_seq: float = 0.0  # msgs/s, enqueue + claim/ack, sequential
    bare_seq_deliver: float = 0.0  # msgs/s, claim/ack only, sequential
    bare_conc: float = 0.0  # msgs/s, enqueue + claim/ack, Lamina's concurrency
    bare_conc_deliver: float = 0.0  # msgs/s, claim/ack only, Lamina's concurrency
    lamina_total: float = 0.0  # msgs/s, send -> ack
    lamina_deliver: float = 0.0  # msgs/s, visible -> ack
    per_invocation: float = 0.0  # messages per handler invocation, end to end


def now_ms() -> int:
    return int(time.time() * 1000)


def deadline_s(n: int) -> float:
    return 30.0 + n / MIN_RATE


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


# -- backends ------------------------------------------------------------------------------------
def with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def libpq_url(url: str) -> str:
    """`url` without Lamina's own `lamina_*` parameters (what psycopg accepts)."""
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.startswith("lamina_")
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


class Postgres:
    """Fresh schemas on the server `url` names; `drop()` removes every one handed out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.schemas: list[str] = []

    async def check(self) -> str:
        import psycopg

        try:
            async with await psycopg.AsyncConnection.connect(
                libpq_url(self.url), connect_timeout=5
            ) as conn:
                cur = await conn.execute("SHOW server_version")
                row = await cur.fetchone()
                return str(row[0]) if row else "?"
        except psycopg.OperationalError as exc:
            raise SystemExit(
                f"PostgreSQL at {self.url} is not reachable ({exc}); pass --postgres URL"
                " or --backend sqlite"
            ) from None

    def fresh(self, label: str) -> str:
        schema = f"lamina_bench_{label}_{secrets.token_hex(4)}"
        self.schemas.append(schema)
        return with_params(self.url, lamina_schema=schema)

    async def drop(self) -> None:
        import psycopg
        from psycopg import sql

        if not self.schemas:
            return
        async with await psycopg.AsyncConnection.connect(
            libpq_url(self.url), autocommit=True, connect_timeout=5
        ) as conn:
            for schema in self.schemas:
                await conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
        self.schemas.clear()


@contextlib.asynccontextmanager
async def opened(url: str, tmp: Path) -> AsyncIterator[Store]:
    store = open_store(url, default_dir=tmp)
    await asyncio.wait_for(store.open(), 30)
    try:
        yield store
    finally:
        await store.close()


# -- bare store ----------------------------------------------------------------------------------
async def bare(
    url: str, tmp: Path, batch: int, n: int, bar: Progress, label: str, concurrent: bool
) -> tuple[float, float]:
    """(enqueue + claim/ack msgs/s, claim/ack msgs/s) of the store alone. Sequential: one await
    after the other. Concurrent: Lamina's concurrency without Lamina, i.e. one-message enqueues
    SEND_CHUNK at a time, then CAPACITY workers each looping claim(batch) -> ack each."""
    queue = f"bare:{batch}"
    mode = "concurrent" if concurrent else "sequential"
    task = bar.add_task(f"{label} bare store {mode}, batch {batch}", total=2 * n)
    async with opened(url, tmp) as store, asyncio.timeout(deadline_s(n)):

        async def enqueue(i: int) -> None:
            await store.enqueue([NewMessage(queue=queue, body=b'{"n": %d}' % i)], now_ms=now_ms())

        async def claim_ack() -> int:
            messages = await store.claim(
                queue, max_messages=batch, lease_ms=30_000, now_ms=now_ms()
            )
            for m in messages:
                if not await store.ack(queue, m.id, m.lease_token or ""):
                    raise RuntimeError(f"bare store: lost the lease of {m.id}")
            bar.advance(task, len(messages))
            return len(messages)

        async def worker() -> int:
            acked = 0
            while k := await claim_ack():
                acked += k
            return acked

        for i in range(20):  # warm-up: connections, prepared statements
            await enqueue(i)
        await worker()
        bar.reset(task)
        started = time.perf_counter()
        if concurrent:
            for i in range(0, n, SEND_CHUNK):
                await asyncio.gather(*(enqueue(i + j) for j in range(min(SEND_CHUNK, n - i))))
                bar.advance(task, min(SEND_CHUNK, n - i))
        else:
            for i in range(n):
                await enqueue(i)
                bar.advance(task)
        enqueued = time.perf_counter()
        acked = sum(await asyncio.gather(*(worker() for _ in range(CAPACITY if concurrent else 1))))
        done = time.perf_counter()
        (stats,) = await store.stats([queue])
        if acked != n or stats.depth != 0:
            raise RuntimeError(f"bare store: acked {acked} of {n}; {stats.depth} left in {queue}")
    return n / (done - started), n / (done - enqueued)


# -- Lamina --------------------------------------------------------------------------------------
async def until(
    cond: Callable[[], bool], what: str, timeout_s: float, on_tick: Callable[[], None]
) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        on_tick()
        await asyncio.sleep(0.005)
    on_tick()


class Bench:
    def __init__(self, platform: Platform, bar: Progress, label: str) -> None:
        assert platform.queues is not None and platform.store is not None
        self.platform = platform
        self.queues = platform.queues
        self.store = platform.store
        self.bar = bar
        self.label = label

    async def settled(self, queue: str, before: tuple[int, int, int], n: int, what: str) -> None:
        """Every one of the `n` messages was acknowledged and nothing else happened."""
        delivered, failed, dead = before
        got = (
            self.queues.delivered - delivered,
            self.queues.failed - failed,
            self.queues.dead_lettered - dead,
        )
        if got != (n, 0, 0):
            raise RuntimeError(
                f"{what}: delivered/failed/dead-lettered {got}, expected ({n}, 0, 0)"
            )
        (stats,) = await self.store.stats([queue_store_name(queue)])
        if stats.depth != 0:
            raise RuntimeError(f"{what}: {stats.depth} messages left in queue {queue}")

    def invocations(self, batch: int) -> tuple[int, int]:
        """(invocations, errors) so far of the function consuming the batch-`batch` queue."""
        assert self.platform.invoker is not None
        fid = next(t.function_id for t in self.queues.targets if t.queue == QUEUES[batch])
        status = next(f for f in self.platform.invoker.status() if f["id"] == fid)
        return int(status["invocations"]), int(status["errors"])

    def counters(self) -> tuple[int, int, int]:
        return self.queues.delivered, self.queues.failed, self.queues.dead_lettered

    async def send_all(
        self, queue: str, n: int, on_sent: Callable[[int], None] = lambda k: None
    ) -> None:
        for i in range(0, n, SEND_CHUNK):
            k = min(SEND_CHUNK, n - i)
            await asyncio.gather(*(self.queues.send(queue, f'{{"n": {i + j}}}') for j in range(k)))
            on_sent(k)

    async def end_to_end(self, batch: int, n: int, *, warmup: bool = False) -> tuple[float, float]:
        """(msgs/s, messages per invocation)."""
        queue = QUEUES[batch]
        what = f"{self.label} Lamina end to end, batch {batch}" + (" (warm-up)" if warmup else "")
        task = self.bar.add_task(what, total=n, visible=not warmup)
        before = self.counters()
        calls, errors = self.invocations(batch)
        async with asyncio.timeout(deadline_s(n)):
            started = time.perf_counter()
            await self.send_all(queue, n)
            await until(
                lambda: self.queues.delivered - before[0] >= n,
                f"{what}: {n} acks",
                deadline_s(n),
                lambda: self.bar.update(task, completed=self.queues.delivered - before[0]),
            )
            done = time.perf_counter()
        await self.settled(queue, before, n, what)
        calls_after, errors_after = self.invocations(batch)
        if errors_after != errors or not n / batch <= calls_after - calls <= n:
            raise RuntimeError(
                f"{what}: {calls_after - calls} invocations, {errors_after - errors} errors"
            )
        return n / (done - started), n / (calls_after - calls)

    async def delivery_only(self, batch: int, n: int, margin_s: float) -> float:
        queue = QUEUES[batch]
        what = f"{self.label} Lamina delivery only, batch {batch}"
        task = self.bar.add_task(what, total=n)
        before = self.counters()
        visible_at = now_ms() + round(margin_s * 1000)
        for i in range(0, n, BULK_CHUNK):
            t = now_ms()
            await self.store.enqueue(
                [
                    NewMessage(
                        queue=queue_store_name(queue),
                        body=b'{"n": %d}' % (i + j),
                        delay_ms=visible_at - t,
                    )
                    for j in range(min(BULK_CHUNK, n - i))
                ],
                now_ms=t,
            )
        if now_ms() >= visible_at - 50 or self.queues.delivered != before[0]:
            raise RuntimeError(
                f"{what}: pre-filling took longer than {margin_s} s; raise the margin"
            )
        await asyncio.sleep(max(0.0, visible_at / 1000 - time.time()))
        started = time.perf_counter()  # the messages are visible from now on
        await until(
            lambda: self.queues.delivered - before[0] >= n,
            f"{what}: {n} acks",
            deadline_s(n),
            lambda: self.bar.update(task, completed=self.queues.delivered - before[0]),
        )
        done = time.perf_counter()
        await self.settled(queue, before, n, what)
        return n / (done - started)


async def lamina(
    url: str,
    tmp: Path,
    sizes: dict[int, int],
    poll_s: float,
    bar: Progress,
    label: str,
    rows: dict[int, Row],
) -> None:
    options = PlatformOptions(
        port=0,
        state_dir=tmp / "state",
        store_url=url,
        event_poll_s=poll_s,
        grace_s=5.0,
        workers_log=False,
        admin_token="bench",
    )
    platform = Platform(load_app(APP), options)
    await asyncio.wait_for(platform.start(), 60)
    try:
        bench = Bench(platform, bar, label)
        for batch in sizes:  # instances up to the consumers' capacity, statements prepared
            await bench.end_to_end(batch, WARMUP, warmup=True)
        for batch, n in sizes.items():
            rows[batch].lamina_total, rows[batch].per_invocation = await bench.end_to_end(batch, n)
        for batch, n in sizes.items():
            rows[batch].lamina_deliver = await bench.delivery_only(
                batch, n, margin_s=1.0 + n / 5000
            )
    finally:
        await asyncio.wait_for(platform.stop(), 60)


# -- driver --------------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    sizes = {b: args.messages or DEFAULT_MESSAGES[b] for b in (1, 10)}
    meta = {
        "cpu_count": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "event_poll_s": str(args.poll),
        "messages": json.dumps(sizes),
    }
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    pg = Postgres(args.postgres)
    if "postgres" in backends:
        meta["postgres"] = await pg.check()
    rows: list[Row] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="lamina-events-bench-") as tmp_name,
            progress() as bar,
        ):
            tmp = Path(tmp_name)
            for backend in backends:
                by_batch = {b: Row(backend, b, n) for b, n in sizes.items()}
                for batch, n in sizes.items():
                    for concurrent in (False, True):
                        kind = "conc" if concurrent else "seq"
                        url = (
                            f"sqlite:///{tmp}/bare-{kind}-{batch}.db"
                            if backend == "sqlite"
                            else pg.fresh(f"bare_{kind}{batch}")
                        )
                        rates = await bare(url, tmp, batch, n, bar, backend, concurrent)
                        if concurrent:
                            by_batch[batch].bare_conc, by_batch[batch].bare_conc_deliver = rates
                        else:
                            by_batch[batch].bare_seq, by_batch[batch].bare_seq_deliver = rates
                url = f"sqlite:///{tmp}/lamina.db" if backend == "sqlite" else pg.fresh("lamina")
                (tmp / backend).mkdir()
                await lamina(url, tmp / backend, sizes, args.poll, bar, backend, by_batch)
                rows.extend(by_batch.values())
    finally:
        await pg.drop()
    return rows, meta


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages",
        type=int,
        help="messages per measurement (default 2000 for batch 1, 5000 for batch 10)",
    )
    parser.add_argument(
        "--postgres", default=os.environ.get("LAMINA_TEST_POSTGRES_URL") or DEFAULT_PG
    )
    parser.add_argument("--backend", choices=["both", "sqlite", "postgres"], default="both")
    parser.add_argument("--poll", type=float, default=0.05, help="PlatformOptions.event_poll_s")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.messages is not None and args.messages < 1:
        parser.error("--messages must be >= 1")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rows, meta = asyncio.run(run(args))

    headers = [
        "backend",
        "batch",
        "messages",
        "bare store msg/s (seq / conc)",
        "Lamina msg/s",
        "ratio (vs seq / vs conc)",
        "msgs per invocation",
        "delivery only: bare conc claim+ack msg/s",
        "Lamina msg/s",
        "ratio",
    ]
    lines = []
    for r in rows:
        seq, conc = r.lamina_total / r.bare_seq, r.lamina_total / r.bare_conc
        goal = f" {'meets' if conc >= GOAL else 'misses'} >= {GOAL:.0%}" if r.batch == 10 else ""
        lines.append(
            [
                r.backend,
                str(r.batch),
                str(r.messages),
                f"{r.bare_seq:.0f} / {r.bare_conc:.0f}",
                f"{r.lamina_total:.0f}",
                f"{seq:.2f} / {conc:.2f}{goal}",
                f"{r.per_invocation:.1f}",
                f"{r.bare_conc_deliver:.0f}",
                f"{r.lamina_deliver:.0f}",
                f"{r.lamina_deliver / r.bare_conc_deliver:.2f}",
            ]
        )
    if args.markdown:
        print("| " + " | ".join(headers) + " |")
        print("|" + "---|" * len(headers))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        table = Table(
            *headers, title="queue messages per second (enqueue -> handler ran -> acknowledged)"
        )
        for line in lines:
            table.add_row(*line)
        Console(width=max(160, Console().width)).print(table)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
