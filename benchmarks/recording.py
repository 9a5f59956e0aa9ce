"""Where recording's cost goes, per invocation, measured as CPU time rather than requests/s
(which move by ±10% from run to run on a shared machine, more than the cost itself).

    python benchmarks/recording.py              # prints a table
    python benchmarks/recording.py --markdown   # the same as Markdown, for docs/benchmarks.md

Two parts, each in this process against the real code:
- **The platform's thread.** Invocations through a real `FunctionPool`, 32 at a time, with a
  `Recorder` (real SQLite store, its writer process, metrics) and without. The instance is a
  stand-in that answers on the next turn of the event loop, so the gateway, sockets and
  handler are left out and only what recording adds shows. CPU time of this process per
  invocation (the writer process is not in it), alternating on and off `--runs` times; the
  medians, and the parts: recording with the record not kept (the request path alone),
  counted by the metrics and packed but never written, and everything. Also the CPU per
  line a function prints, from the recorder taking it to its write.
- **The writer process.** Its work per row, as it does it: batches of 2000 invocation rows
  (one flush chunk, one transaction), 10,000 rows per simulated second (request ids from one
  counter, trace ids starting with their second and millisecond, as Lamina makes them),
  decoded from the frame the platform sends and inserted with the table's indexes, and
  without each index in turn, to show what each costs (the variants taking turns `--runs`
  times; the medians). The same for log rows, one line per invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import uvloop
from rich.console import Console
from run import print_table

from lamina.clock import SystemClock
from lamina.executor.types import FunctionConfig, InvocationRequest, InvocationResult
from lamina.invoker.pool import FunctionPool, PoolConfig
from lamina.scaling.policy import ScalingSpec
from lamina.store import open_store
from lamina.store._batch import BatchInsert
from lamina.store._rows import INVOCATION_COLUMNS, LOG_COLUMNS
from lamina.store._writer import connect
from lamina.store.types import TelemetryStore
from lamina.telemetry.metrics import Metrics
from lamina.telemetry.recorder import Recorder

console = Console(stderr=True)
CONCURRENCY = 32  # invocations in flight, as `wrk -c32` in run.py
ROWS_PER_S = 10_000  # about what the warm path serves on this machine
CHUNK = 2000  # rows per frame and transaction, as the recorder writes them
INDEXES = {
    "invocations": (
        "invocations_function_start",
        "invocations_start",
        "invocations_request",
        "invocations_trace",
    ),
    "logs": ("logs_function", "logs_request", "logs_time"),
}


class _Instance:
    """Answers every invocation on the next turn of the event loop."""

    pid = 0
    function_id = "bench.hello"
    init_ms = 1.0
    node = None
    alive = True
    serial = False

    def __init__(self, iid: str) -> None:
        self.iid = iid

    async def invoke(self, request: InvocationRequest) -> InvocationResult:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[InvocationResult] = loop.create_future()
        loop.call_soon(answer.set_result, InvocationResult(True, {"ok": True}))
        return await answer

    async def stop(self, grace_s: float = 2.0) -> None:
        return None


class _Backend:
    def __init__(self) -> None:
        self.started = 0

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def prepare(self, fn: FunctionConfig) -> None: ...

    async def start_instance(self, fn: FunctionConfig, on_exit: Callable[..., None]) -> _Instance:
        self.started += 1
        return _Instance(f"i{self.started}")

    def release(self, fn: FunctionConfig) -> None: ...


def _variant(recorder: Recorder, store: TelemetryStore, mode: str) -> None:
    """Recording with its later stages cut off: `request` keeps no record, `packed` counts and
    packs them (a few hundred at a time) and drops them unwritten (the store takes the packs
    and keeps nothing); `all` is the real thing."""
    if mode == "request":
        recorder.invocation_row = lambda row: None  # type: ignore[method-assign]
    elif mode == "packed":

        async def drop(table: str, packs: Sequence[bytes]) -> None:
            return None

        store.add_packed = drop  # type: ignore[method-assign]


async def _pool_us(mode: str, invocations: int) -> float:
    """CPU µs of this process per invocation through a pool; `mode` "off" has no recorder."""
    clock = SystemClock()
    fn = FunctionConfig("bench.hello", "hello.handler", tempfile.gettempdir(), 128, 3.0, 1)
    config = PoolConfig(fn, ScalingSpec(0, CONCURRENCY * 2, 1, 600.0), 1000, 10.0)
    recorder = store = None
    with tempfile.TemporaryDirectory() as tmp:
        if mode != "off":
            store = open_store(None, default_dir=Path(tmp))
            await store.open()
            recorder = Recorder(store, clock, on_records=Metrics().observe)
            _variant(recorder, store, mode)
            recorder.start()
        pool = FunctionPool(config, _Backend(), clock, recorder)
        await pool.start()
        ids = iter(range(10**12))

        async def client(n: int) -> None:
            for _ in range(n):
                rid = f"3f2a9c1e-7b4d-4e21-a9c3-{next(ids):012x}"
                await pool.invoke(InvocationRequest(rid, {"n": 1}, trigger="http"))

        await asyncio.gather(*(client(200) for _ in range(CONCURRENCY)))  # instances started
        started = time.process_time()
        await asyncio.gather(*(client(invocations // CONCURRENCY) for _ in range(CONCURRENCY)))
        if recorder is not None:
            await recorder.flush()  # what the last second kept is part of the cost
        spent = time.process_time() - started
        if recorder is not None:
            await recorder.stop()
        await pool.close()
        if store is not None:
            stored = len(await store.invocations(limit=invocations))
            await store.close()
            if mode == "all" and stored < invocations:
                raise RuntimeError("the recorder did not store every invocation it measured")
            if mode != "all" and stored:
                raise RuntimeError(f"the {mode!r} variant wrote records: it measures too much")
    return spent / invocations * 1e6


async def _line_us(lines: int) -> float:
    """CPU µs of this process per line a function prints: handed to the recorder, then
    written (a flush per `ROWS_PER_S` lines, as at that many requests/s)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(None, default_dir=Path(tmp))
        await store.open()
        recorder = Recorder(store, SystemClock())
        text = "handled a request for /logline"
        recorder.output(None, "bench.logline", None, "5d0c2e1a9b7f", "stdout", text)
        await recorder.flush()  # the writer process is started
        started = time.process_time()
        for i in range(lines):
            rid = f"3f2a9c1e-7b4d-4e21-a9c3-{i:012x}"
            recorder.output(None, "bench.logline", rid, "5d0c2e1a9b7f", "stdout", text)
            if i % ROWS_PER_S == ROWS_PER_S - 1:
                await recorder.flush()
        await recorder.flush()
        spent = time.process_time() - started
        await recorder.stop()
        await store.close()
    return spent / lines * 1e6


def platform_thread(runs: int, invocations: int) -> dict[str, float]:
    """Median CPU µs per invocation of each mode, the modes alternating `runs` times."""
    modes = ("off", "request", "packed", "all")
    samples: dict[str, list[float]] = {m: [] for m in [*modes, "line"]}
    for i in range(runs):
        console.print(f"  platform's thread: round {i + 1} of {runs}")
        for mode in modes if i % 2 == 0 else modes[::-1]:
            samples[mode].append(uvloop.run(_pool_us(mode, invocations)))
        samples["line"].append(uvloop.run(_line_us(invocations // 2)))
    return {m: statistics.median(v) for m, v in samples.items()}


def _log_rows(second: int, first: int, count: int) -> list[tuple[Any, ...]]:
    """`count` log rows (one line printed per invocation) as the recorder sends them."""
    return [
        (
            second * 1000 + (first + i) // 10,
            "bench.logline",
            f"3f2a9c1e-7b4d-4e21-a9c3-{second * ROWS_PER_S + first + i:012x}",
            "5d0c2e1a9b7f",
            "stdout",
            "INFO",
            "a line the function printed",
        )
        for i in range(count)
    ]


def _rows(second: int, first: int, count: int) -> list[tuple[Any, ...]]:
    """`count` invocation rows as the recorder sends them, in simulated second `second`."""
    start_ms = second * 1000  # row i of the second starts at millisecond i // 10
    return [
        (
            f"3f2a9c1e-7b4d-4e21-a9c3-{second * ROWS_PER_S + first + i:012x}",  # one counter
            "bench.hello",
            "http",
            start_ms + (first + i) // 10,
            0.52,
            1,
            None,
            False,
            128,
            None,
            "ok",
            None,
            "5d0c2e1a9b7f",
            f"{second:08x}{(first + i) // 10:03x}{random.randbytes(11).hex()[:21]}",
            random.randbytes(8).hex(),
            None,
            "$LATEST",
        )
        for i in range(count)
    ]


def writer_row_us(table: str, drop: str | None, seconds: int) -> tuple[float, float]:
    """(decode, insert) CPU µs per row of `table` (invocations or logs) over the last half of
    `seconds` simulated seconds, on a fresh database with Lamina's schema and the writer's
    settings, without index `drop`."""
    with tempfile.TemporaryDirectory() as tmp:

        async def create() -> None:
            store = open_store(None, default_dir=Path(tmp))
            await store.open()
            await store.close()

        asyncio.run(create())
        conn = connect(str(Path(tmp) / "lamina.db"), busy_timeout_ms=5000, synchronous="NORMAL")
        if drop is not None:
            conn.execute(f"DROP INDEX {drop}")
        insert = BatchInsert(table, INVOCATION_COLUMNS if table == "invocations" else LOG_COLUMNS)
        make = _rows if table == "invocations" else _log_rows
        base = int(time.time())
        decode = write = 0.0
        measured = 0
        for s in range(seconds):
            for first in range(0, ROWS_PER_S, CHUNK):
                rows = make(base + s, first, CHUNK)
                frame = orjson.dumps({"table": table, "rows": rows})
                t0 = time.process_time()
                rows = orjson.loads(frame)["rows"]
                t1 = time.process_time()
                conn.execute("BEGIN IMMEDIATE")
                insert.run(rows, conn)
                conn.execute("COMMIT")
                t2 = time.process_time()
                if s >= seconds // 2:
                    decode, write, measured = decode + t1 - t0, write + t2 - t1, measured + CHUNK
        conn.close()
    return decode / measured * 1e6, write / measured * 1e6


def writer_parts(table: str, runs: int, seconds: int) -> dict[str | None, tuple[float, float]]:
    """Median (decode, insert) µs per row of `table` with every index (key None) and without
    each one, the variants taking turns `runs` times."""
    variants: list[str | None] = [None, *INDEXES[table]]
    samples: dict[str | None, list[tuple[float, float]]] = {v: [] for v in variants}
    for i in range(runs):
        console.print(f"  writer process, {table}: round {i + 1} of {runs}")
        for variant in variants[i % len(variants) :] + variants[: i % len(variants)]:
            samples[variant].append(writer_row_us(table, variant, seconds))
    return {
        v: (statistics.median(d for d, _ in got), statistics.median(w for _, w in got))
        for v, got in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="rounds of each part's variants")
    parser.add_argument("--invocations", type=int, default=100_000, help="per pool run")
    parser.add_argument("--seconds", type=int, default=8, help="simulated seconds of rows")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    gc.freeze()  # as `lamina up` does once it has started
    pool = platform_thread(args.runs, args.invocations)
    off = pool["off"]
    rows = [
        ["platform's thread: pool, no recorder", f"{off:.2f}", "", "the floor of this part"],
        [
            "platform's thread: + record built, not kept",
            f"{pool['request']:.2f}",
            f"+{pool['request'] - off:.2f}",
            "the record, the output sink, the clock readings",
        ],
        [
            "platform's thread: + records counted and packed",
            f"{pool['packed']:.2f}",
            f"+{pool['packed'] - pool['request']:.2f}",
            "the metrics and the store's encoding, a few hundred records at a time",
        ],
        [
            "platform's thread: + written",
            f"{pool['all']:.2f}",
            f"+{pool['all'] - pool['packed']:.2f}",
            f"recording in all: +{pool['all'] - off:.2f} µs per invocation",
        ],
        [
            "platform's thread: a line the function prints",
            f"{pool['line']:.2f}",
            "",
            "handed to the recorder, then written",
        ],
    ]
    for table, what in (("invocations", "record"), ("logs", "log line")):
        writer = writer_parts(table, args.runs, args.seconds)
        decode, full = writer[None]
        count = len(INDEXES[table])
        rows.append([f"writer: decode the frame, {what}", f"{decode:.2f}", "", "per row"])
        rows.append([f"writer: insert a {what}, all {count} indexes", f"{full:.2f}", "", ""])
        for index in INDEXES[table]:
            without = writer[index][1]
            rows.append(
                [f"writer: insert without {index}", f"{without:.2f}", f"{without - full:+.2f}", ""]
            )
    print_table(["part", "CPU µs", "difference", "notes"], rows, markdown=args.markdown)


if __name__ == "__main__":
    main()
