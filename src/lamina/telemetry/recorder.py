"""The recorder: every invocation's record and every line a function writes, buffered in
memory and written to the store in batches, off the request path.

Recording costs the request path one tuple append per invocation and per output line (a
record is built as an `InvocationRow`, the tuple the store inserts). Every `PACK` records are
handed to `on_records` (the metrics, which count rows) and packed in the store's form
(`TelemetryStore.pack_rows`: JSON for SQLite's writer process), and the rows freed;
`hand_over()` does it at once for the few not yet packed, so a metrics scrape right after some
requests counts them all. Every `PACK` output lines are made log rows (one per line of text,
with its level) and packed the same way. A background task writes the packs every
`flush_interval_s`. The buffers are bounded: past `max_buffered` records (or log rows) the
oldest pack is dropped and counted (`dropped`), so a slow store can never grow the platform's
memory without bound.

Packing a few hundred at a time instead of holding a second's rows (10,000 tuples and their
strings at full load) until the flush cost the platform's thread 1-2 µs less per invocation
(`benchmarks/recording.py`, docs/benchmarks.md).

Each flushed batch of records is also handed to the span exporter, when there is one
(`telemetry.otlp`); handing over only queues it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter, mul
from typing import Any, NamedTuple, Protocol

from lamina.clock import Clock
from lamina.store.types import (
    InvocationRecord,
    InvocationRow,
    LogLine,
    PackedRows,
    TelemetryStore,
    TelemetryTable,
    invocation_row,
    storable_text,
)

__all__ = ["PACK", "Recorder", "SpanSink", "level_of", "report_lines"]

log = logging.getLogger(__name__)

_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL")
_LEVEL_STARTS = frozenset("[DIWECFdiwecf")  # how a line that names its level can start
# ... or may, after spaces: the ASCII characters `level_of` looks further at
_LEVEL_STARTS_ASCII = _LEVEL_STARTS | {c for c in map(chr, range(128)) if c.isspace()}
# ASCII that `str.splitlines` breaks a line at (besides "\n"), and NUL (`storable_text`)
_NOT_PLAIN = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x00")
_LAST = itemgetter(-1)
PACK = 256  # records (or output lines) counted and packed at a time
# Packs are written this many at a time (a transaction each), the event loop running requests
# in between.
_PACKS_PER_WRITE = 8
FAILING_TOLD_EVERY_S = 60.0  # while the store keeps failing, a line in the log this often


def level_of(stream: str, text: str) -> str:
    """The level a line announces (`[ERROR] …` as the Lambda runtime prints, `ERROR:root:…`
    as `logging.basicConfig` does); INFO when it says nothing."""
    if text[:1] not in _LEVEL_STARTS and not text[:1].isspace():
        return "INFO"  # the common case, decided by the first character
    head = text.lstrip()[:10].upper()
    for level in _LEVELS:
        if head.startswith((f"[{level}]", f"{level}:")):
            return "WARNING" if level == "WARN" else "CRITICAL" if level == "FATAL" else level
    return "INFO"


def report_lines(record: InvocationRecord) -> list[LogLine]:
    """The START, END and REPORT lines Lambda writes for an invocation, from its record."""
    rid = record.request_id
    end_ms = record.start_ms + math.ceil(record.duration_ms)
    report = (
        f"REPORT RequestId: {rid}\tDuration: {record.duration_ms:.2f} ms\t"
        f"Billed Duration: {record.billed_ms} ms\tMemory Size: {record.memory_mb} MB\t"
        f"Max Memory Used: {record.max_memory_mb if record.max_memory_mb is not None else '-'} MB"
    )
    if record.init_ms is not None:
        report += f"\tInit Duration: {record.init_ms:.2f} ms"
    if record.status != "ok":
        report += f"\tStatus: {record.status}" + (
            f" ({record.error_type})" if record.error_type else ""
        )

    def line(time_ms: int, message: str) -> LogLine:
        return LogLine(
            time_ms, record.function_id, rid, record.instance_id, "platform", "INFO", message
        )

    return [
        line(record.start_ms, f"START RequestId: {rid} Version: {record.version or '$LATEST'}"),
        line(end_ms, f"END RequestId: {rid}"),
        line(end_ms, report),
    ]


class SpanSink(Protocol):
    """Where flushed records go as spans besides the store (`otlp.OtlpExporter`)."""

    def submit(self, records: Sequence[InvocationRow]) -> None:
        """Take a batch (as rows); must not block."""
        ...

    def close(self) -> None:
        """Send what is pending and stop; may block (it is called in a thread)."""
        ...


class _Pack(NamedTuple):
    size: int  # rows in it
    packed: PackedRows  # the store's form of the rows
    rows: list[InvocationRow] | None  # records kept only for the span exporter


class _Packs:
    """One table's packs waiting to be written: at most `bound` rows, past which the oldest
    pack is dropped and counted."""

    def __init__(self, store: TelemetryStore, table: TelemetryTable, bound: int) -> None:
        self._store = store
        self.table = table
        self._bound = bound
        self._packs: deque[_Pack] = deque()
        self.rows = 0
        self.dropped = 0

    def add(self, rows: list[Any], keep: list[InvocationRow] | None = None) -> None:
        try:
            packed = self._store.pack_rows(self.table, rows)
        except Exception:  # on the request path: a row the store cannot take costs only itself
            log.exception("packing telemetry rows failed; dropped", extra={"table": self.table})
            self.dropped += len(rows)
            return
        self._packs.append(_Pack(len(rows), packed, keep))
        self.rows += len(rows)
        self._drop_past_bound()

    def _drop_past_bound(self) -> None:
        while self.rows > self._bound:
            self.rows -= (oldest := self._packs.popleft()).size
            self.dropped += oldest.size

    def take(self) -> list[_Pack]:
        packs = list(self._packs)
        self._packs.clear()
        self.rows = 0
        return packs

    def put_back(self, packs: list[_Pack]) -> None:
        """`packs` (taken, not written) go back in front of what came since, within the
        bound."""
        self._packs.extendleft(reversed(packs))
        self.rows += sum(pack.size for pack in packs)
        self._drop_past_bound()


class _Failing:
    """What the log is told while the background flush fails (a store that is down): the
    first failure with its traceback, then a line at most every `FAILING_TOLD_EVERY_S` while
    it goes on, not one a flush, and a line when writing works again. A store that fails and
    works by turns is told about no more often: a failure within a minute of the last line is
    counted, not logged, and its recovery is not logged either. The flush is retried every
    interval all the while; what it could not write stays buffered (within the bound)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._since: float | None = None  # when the failing began
        self._told_at: float | None = None  # the last line about a failure
        self._failures = 0  # in this spell

    def failed(self, exc: Exception, waiting: int, dropped: int) -> None:
        now = self._clock.monotonic()
        self._failures += 1
        if self._since is None:
            self._since = now
        if self._told_at is not None and now - self._told_at < FAILING_TOLD_EVERY_S:
            return
        told = self._told_of_spell()
        self._told_at = now
        if not told:
            log.exception(
                "writing invocation records and logs failed; retrying at every flush",
                extra={"waiting": waiting, "dropped": dropped},
            )
            return
        log.warning(
            "writing invocation records and logs still fails",
            extra={
                "failing_for_s": round(now - self._since),
                "failed_attempts": self._failures,
                "waiting": waiting,
                "dropped": dropped,
                "error": f"{type(exc).__name__}: {exc}",
            },
        )

    def worked(self) -> None:
        if self._since is None:
            return
        if self._told_of_spell():
            log.warning(
                "writing invocation records and logs works again",
                extra={
                    "failed_for_s": round(self._clock.monotonic() - self._since),
                    "failed_attempts": self._failures,
                },
            )
        self._since = None
        self._failures = 0

    def _told_of_spell(self) -> bool:
        """Whether a line has told of the failures since `_since`."""
        return (
            self._since is not None and self._told_at is not None and self._told_at >= self._since
        )


class Recorder:
    """Collects records and output lines; a background task writes them to the store."""

    def __init__(
        self,
        store: TelemetryStore,
        clock: Clock,
        *,
        flush_interval_s: float = 1.0,
        max_buffered: int = 100_000,
        retention_s: float = 7 * 86400,
        on_records: Callable[[Sequence[InvocationRow]], None] | None = None,
        spans: SpanSink | None = None,
    ) -> None:
        self._store = store
        self._spans = spans
        self._clock = clock
        self._flush_interval_s = flush_interval_s
        self._retention_s = retention_s
        self._pending: list[InvocationRow] = []  # not yet counted nor packed
        self._records = _Packs(store, "invocations", max_buffered)
        self._on_records = on_records
        self._lines: list[tuple[Any, ...]] = []  # output not yet made log rows
        self._logs = _Packs(store, "logs", max_buffered)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._last_prune_s = 0.0
        self.written = 0
        self._dropped_told = 0  # drops already warned about

    @property
    def waiting(self) -> int:
        """Records and output not yet written (packed or not)."""
        return self._records.rows + self._logs.rows + len(self._pending) + len(self._lines)

    @property
    def dropped(self) -> int:
        """Records and log rows dropped unwritten: the store did not keep up."""
        return self._records.dropped + self._logs.dropped

    # -- the request path: appends only ------------------------------------------------------
    def invocation(self, record: InvocationRecord) -> None:
        self.invocation_row(invocation_row(record))

    def invocation_row(self, row: InvocationRow) -> None:
        """`invocation`, for a record already built as a row (the warm path's form)."""
        pending = self._pending
        pending.append(row)
        if len(pending) >= PACK:
            self.hand_over()

    def output(
        self,
        echo: Callable[[str, str], None] | None,
        function_id: str,
        request_id: str | None,
        instance_id: str | None,
        stream: str,
        text: str,
    ) -> None:
        """A line (or lines) a function wrote, passed on to `echo` (the console) as well when
        there is one: an invocation's log sink is this with its first four arguments bound
        (`partial`)."""
        lines = self._lines
        lines.append((self._clock.wall(), function_id, request_id, instance_id, stream, text))
        if len(lines) >= PACK:
            self._pack_lines()
        if echo is not None:
            echo(stream, text)

    def _pack_lines(self) -> None:
        """The output lines taken so far as log rows: a row per line of text, with its level.

        Instances send whole lines, usually one per text: when every text is one plain line
        (ASCII, ending in its only line break, no NUL), the rows are built by columns, in C,
        and levels are read line by line only when some line may name one (about 210 ns a
        line against 360, timeit); otherwise the rows are built line by line."""
        taken, self._lines = self._lines, []
        if not taken:
            return
        times, fids, rids, iids, streams, texts = zip(*taken, strict=True)
        joined = "".join(texts)
        if (
            joined.isascii()
            and joined.count("\n") == len(texts)
            and all(texts)
            and set(map(_LAST, texts)) == {"\n"}
            and not any(map(joined.__contains__, _NOT_PLAIN))
        ):
            parts = joined.split("\n")[:-1]  # each text without its line break
            leveled = not _LEVEL_STARTS_ASCII.isdisjoint(map(itemgetter(0), texts))
            rows = list(
                zip(
                    map(int, map(mul, times, repeat(1000))),
                    fids,
                    rids,
                    iids,
                    streams,
                    map(level_of, streams, parts) if leveled else repeat("INFO"),
                    parts,
                    strict=False,  # repeat() is endless
                )
            )
        else:
            rows = []
            for time_s, fid, rid, iid, stream, text in taken:
                time_ms = int(time_s * 1000)
                for part in text.splitlines() or [""]:
                    level, stored = level_of(stream, part), storable_text(part)
                    rows.append((time_ms, fid, rid, iid, stream, level, stored))
        self._logs.add(rows)

    # -- the background writer ---------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Write what is buffered, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._spans is not None:
            await asyncio.to_thread(self._spans.close)

    async def _run(self) -> None:
        failing = _Failing(self._clock)
        while True:
            timer = self._clock.call_later(self._flush_interval_s, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:
                failing.failed(exc, self.waiting, self.dropped)
                continue
            failing.worked()
            try:
                await self._prune()
            except Exception:  # tried again in a minute
                log.exception("removing invocation records and logs past retention failed")

    def hand_over(self) -> None:
        """Give the records not yet handed over to `on_records`, and pack them for the store;
        they stay queued for the next write. Synchronous and store-free: the metrics scrape
        calls it."""
        rows, self._pending = self._pending, []
        if not rows:
            return
        if self._on_records is not None:
            try:
                self._on_records(rows)
            except Exception:  # metrics must never cost the records
                log.exception("counting invocation records for the metrics failed")
        self._records.add(rows, keep=rows if self._spans is not None else None)

    async def flush(self) -> None:
        """Write everything buffered now (tests call this instead of waiting). Returns once
        all that was recorded before the call is in the store, also what a flush already
        under way (the background one) had taken: flushes run one at a time.

        What a failed (or cancelled) flush did not write stays buffered, to be written first
        by the next one: a store that is down for a while loses nothing until the buffer's
        bound is reached."""
        async with self._flushing:
            self.hand_over()
            if self._lines:
                self._pack_lines()
            pending = [(self._logs, self._logs.take()), (self._records, self._records.take())]
            try:
                for buffer, packs in pending:
                    while packs:
                        part = packs[:_PACKS_PER_WRITE]
                        await self._store.add_packed(buffer.table, [p.packed for p in part])
                        del packs[: len(part)]
                        if buffer is self._records:
                            self._stored(part)
                        if packs:
                            await asyncio.sleep(0)  # requests run between transactions
            finally:
                for buffer, packs in pending:
                    buffer.put_back(packs)
            if self.dropped > self._dropped_told:
                log.warning(
                    "the store fell behind: invocation records or log lines were dropped "
                    "unwritten (the lamina_telemetry_dropped_total metric counts them)",
                    extra={"dropped": self.dropped - self._dropped_told, "total": self.dropped},
                )
                self._dropped_told = self.dropped

    def _stored(self, packs: list[_Pack]) -> None:
        """`packs` of records are in the store: count them, and export them as spans (once
        stored: a trace a collector shows is in the dashboard too)."""
        self.written += sum(pack.size for pack in packs)
        if self._spans is not None:
            self._spans.submit([row for pack in packs for row in pack.rows or ()])

    async def _prune(self) -> None:
        now = self._clock.monotonic()
        if now - self._last_prune_s < 60:
            return
        self._last_prune_s = now
        removed = await self._store.prune_telemetry(
            before_ms=int((self._clock.wall() - self._retention_s) * 1000)
        )
        if removed:
            log.info("old invocation records and logs removed", extra={"count": removed})
