"""The SQLite store's telemetry writer: a child process that inserts invocation records and log
lines, so that the platform's process never spends its GIL on them.

Measured on the warm path: inserting a second's records from a thread of the platform's own
process cost 9% of its requests/s on top of building them, although the thread ran on the
other core — the gateway's event loop waited for the GIL each time the thread held it. The
child costs the platform the rows' encoding and one pipe write per batch. It runs at a lower CPU
priority (`WRITER_NICE`): where it competes for a core, the gateway's thread and the instances
win. Measured (`benchmarks/ab.py`, 12 pairs at 32 connections): 6.9% more requests/s, p99 8.0
-> 7.1 ms; at one connection p99 1.81 -> 1.41 ms. It still kept up with every record while a
CPU-bound function kept both cores busy (hello at 256 connections, 213,004 records, none
dropped).

Protocol: the parent writes frames (4-byte big-endian length, then JSON) `{"table": "logs" |
"invocations", "rows": [[...], ...]}`, joined from rows packed beforehand (`pack_rows`), on the
child's stdin; the child inserts each frame's rows in one transaction, in order, and answers
`{"ok": true}` or `{"ok": false, "error": "..."}` on stdout. It exits when stdin closes, and
(Linux) when the platform dies. One batch is in flight at a time. If the child dies before
answering, the parent starts a new child and sends the batch again, once: SQLite rolled an
unfinished transaction back, so the batch is written once, unless the child died between its
commit and its answer (then the batch is written twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

import orjson

from lamina.errors import StoreUnavailable
from lamina.store.types import storable_text

__all__ = ["TelemetryWriter", "main", "pack_rows"]

_HEADER = struct.Struct(">I")
# Not `-m lamina.store._writer`: the package imports this module before runpy would run it.
_CHILD = "import sys; from lamina.store._writer import main; main(sys.argv[1:])"


def pack_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """`rows` as `TelemetryWriter.write` takes them: a JSON array of arrays. Text that UTF-8
    cannot hold (a lone surrogate) is stored with U+FFFD in its place, as in a log line."""
    try:
        return orjson.dumps(rows)
    except orjson.JSONEncodeError:
        return orjson.dumps(
            [[storable_text(v) if isinstance(v, str) else v for v in row] for row in rows]
        )


def _message(table: str, packs: Sequence[bytes]) -> bytes:
    """The frame, header first, of `packs`' rows for `table`, made with a single copy of the
    rows (a second of records at full load is megabytes; each copy cost the platform's
    thread time)."""
    parts: list[bytes | memoryview] = [b"", b'{"table":"%s","rows":[' % table.encode()]
    for pack in packs:
        if len(pack) > 2:  # not an empty array
            parts += (memoryview(pack)[1:-1], b",")  # the array's items
    if len(parts) > 2:
        parts[-1] = b"]}"  # in place of the last comma
    else:
        parts.append(b"]}")
    parts[0] = _HEADER.pack(sum(map(len, parts)))
    return b"".join(parts)


class TelemetryWriter:
    """The parent's side: starts the child at the first write, restarts it if it died."""

    def __init__(self, path: str, *, busy_timeout_ms: int, synchronous: str, url: str) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.synchronous = synchronous  # the store's: NORMAL, or FULL with sync="full"
        self.url = url
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def write(self, table: str, packs: Sequence[bytes]) -> None:
        """Insert the rows of `packs` (each `pack_rows`' JSON array) into `table`, in order, in
        one transaction; returns once they are committed."""
        message = _message(table, packs)
        async with self._lock:
            for attempt in (1, 2):
                proc = await self._child()
                try:
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write(message)
                    await proc.stdin.drain()
                    size = _HEADER.unpack(await proc.stdout.readexactly(_HEADER.size))[0]
                    answer = orjson.loads(await proc.stdout.readexactly(size))
                except (OSError, asyncio.IncompleteReadError) as exc:
                    await self._reap()
                    if attempt == 2:
                        raise StoreUnavailable(
                            f"the telemetry writer process exited: {exc}", url=self.url
                        ) from exc
                    continue
                if not answer["ok"]:
                    raise StoreUnavailable(answer["error"], url=self.url)
                return

    async def close(self) -> None:
        async with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def _child(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _CHILD,
                self.path,
                str(self.busy_timeout_ms),
                self.synchronous,
                str(os.getpid()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,  # a terminal's Ctrl-C reaches only the platform, which
            )  # writes its last batch before it stops the writer
        return self._proc

    async def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()


def connect(path: str, *, busy_timeout_ms: int, synchronous: str) -> sqlite3.Connection:
    """The writer's connection to the database at `path`, set up for batch inserts (also what
    benchmarks/recording.py measures)."""
    # The sqlite3 module binds str, int and float directly; anything else (None, bool) goes
    # through its adaptation protocol, two failed attribute lookups that each build an
    # AttributeError: 0.4 µs per value, 2.2 of the 6.3 µs an invocation row took (it holds
    # four Nones and a bool). A registered adapter is one dictionary lookup and a call in C:
    # `{}.get(None)` is None, bound as NULL; `int(True)` is 1, as SQLite stores a boolean.
    # (Process-wide, and this process is the writer's.)
    sqlite3.register_adapter(type(None), cast(Callable[[None], None], {}.get))
    sqlite3.register_adapter(bool, int)
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    # A batch's pages stay in memory until its commit writes each once (a 2 MB cache spilled
    # pages of big batches to the WAL mid-transaction), and the WAL is copied back into the
    # database less often: both cut the writes per record several times over.
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA wal_autocheckpoint = 8000")
    return conn


WRITER_NICE = 10


def _yield_to_requests() -> None:
    """Lower this process's CPU priority: where it competes for a core with the gateway or an
    instance, they get about nine tenths of it. (Its own session is its own autogroup, whose
    nice level is what counts against other sessions; the process's own counts inside it and
    where autogroups are off.)"""
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as group:
        group.write(str(WRITER_NICE))
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICE)


def main(argv: Sequence[str]) -> None:
    """The child: `main([PATH, BUSY_TIMEOUT_MS, SYNCHRONOUS, PARENT_PID])` (see `_CHILD`)."""
    from lamina.runtime.zygote import die_with_parent
    from lamina.store._batch import BatchInsert
    from lamina.store._rows import INVOCATION_COLUMNS, LOG_COLUMNS

    path, busy_timeout_ms, synchronous, parent = argv[0], int(argv[1]), argv[2], int(argv[3])
    if synchronous not in ("NORMAL", "FULL"):
        raise SystemExit(f"synchronous: expected NORMAL or FULL, got {synchronous!r}")
    die_with_parent(parent)
    _yield_to_requests()
    inserts = {
        "invocations": BatchInsert("invocations", INVOCATION_COLUMNS),
        "logs": BatchInsert("logs", LOG_COLUMNS),
    }
    conn = connect(path, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while header := source.read(_HEADER.size):
        request = orjson.loads(source.read(_HEADER.unpack(header)[0]))
        try:
            conn.execute("BEGIN IMMEDIATE")
            # The CPU between chunks (256 rows, about 1.3 ms) goes to whoever waits for it.
            # Without that, the platform's thread and the instances, woken on the core this
            # writer was inserting on, waited for it 2-4 ms: the p99 of a request at one
            # connection went from 1.9 to 1.2 ms with it (docs/benchmarks.md).
            inserts[request["table"]].run(request["rows"], conn, between=os.sched_yield)
            conn.execute("COMMIT")
            answer: dict[str, Any] = {"ok": True}
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        reply = orjson.dumps(answer)
        sink.write(_HEADER.pack(len(reply)) + reply)
        sink.flush()
    conn.close()
