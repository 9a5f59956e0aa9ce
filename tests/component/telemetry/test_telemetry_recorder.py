"""The recorder on a real store with a fake clock: batches written in the background, levels
read from the lines, old records and lines removed after the retention period."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import pytest

from lamina.clock import FakeClock
from lamina.store import Store
from lamina.store.types import (
    InvocationRecord,
    InvocationRow,
    PackedRows,
    TelemetryTable,
    storable_text,
)
from lamina.telemetry.recorder import PACK, Recorder, level_of


def _record(rid: str, start_ms: int) -> InvocationRecord:
    return InvocationRecord(rid, "svc.fn", "http", start_ms, 1.5, 2, None, False, 128, 20, "ok")


async def _eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Bounded wait: the store writes happen on its own thread or server."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    ("stream", "text", "level"),
    [
        pytest.param("stdout", "[ERROR] boom", "ERROR", id="the lambda runtime's bracket form"),
        pytest.param("stderr", "WARNING:root:disk", "WARNING", id="logging basicConfig's form"),
        pytest.param("stdout", "[WARN] slow", "WARNING", id="warn is a warning"),
        pytest.param("stderr", "plain text", "INFO", id="a line that says nothing is info"),
    ],
)
def test_level_of_reads_the_level_a_line_announces(stream: str, text: str, level: str) -> None:
    assert level_of(stream, text) == level


# One line each, as instances send them (the recorder builds these rows by columns) ...
_PLAIN = ["hello 1\n", "[ERROR] boom\n", "  WARNING: indented\n", "WARN:x\n", "info: no\n", "\n"]
# ... and texts that are not (built line by line)
_ODD = ["two\nlines\n", "no line break", "nul\x00here\n", "caf\u00e9\n", "cr\rsplit\n", "\x85\n"]


@pytest.mark.parametrize(
    "texts",
    [
        pytest.param(_PLAIN * 50, id="one plain line each"),
        pytest.param(_PLAIN + _ODD, id="some several lines or not ASCII"),
    ],
)
async def test_each_line_a_function_prints_is_a_log_row_with_its_level(
    store: Store, texts: list[str]
) -> None:
    clock = FakeClock(start_s=0, wall_offset_s=1_700_000_000.0005)
    recorder = Recorder(store, clock)
    expected = []
    for i, text in enumerate(texts):
        stream = ("stdout", "stderr")[i % 2]
        recorder.output(None, "svc.fn", f"r{i}", "i-1", stream, text)
        expected += [
            (int(clock.wall() * 1000), f"r{i}", stream, level_of(stream, line), storable_text(line))
            for line in text.splitlines()
        ]
        clock.advance(0.0013)
    await recorder.flush()
    stored = await store.logs(function_id="svc.fn", limit=10_000)
    assert [(s.time_ms, s.request_id, s.stream, s.level, s.message) for s in stored] == expected
    assert {s.level for s in stored} >= {"INFO", "ERROR", "WARNING"}


async def test_the_recorder_writes_in_the_background_and_prunes_after_retention(
    store: Store,
) -> None:
    clock = FakeClock(start_s=0, wall_offset_s=1_700_000_000)
    recorder = Recorder(store, clock, flush_interval_s=1.0, retention_s=3600)
    now_ms = int(clock.wall() * 1000)
    recorder.invocation(_record("old", now_ms))
    recorder.output(None, "svc.fn", "old", "i-1", "stdout", "first\nsecond\n")
    recorder.start()
    try:
        await asyncio.sleep(0)  # let the writer task arm its timer before time moves
        clock.advance(1.0)

        async def written() -> bool:
            return len(await store.invocations()) == 1 and len(await store.logs()) == 2

        await _eventually(written, "the first batch")
        assert [line.message for line in await store.logs()] == ["first", "second"]
        clock.advance(3600)  # the old record is now past retention
        recorder.invocation(_record("new", int(clock.wall() * 1000)))
        clock.advance(61)  # a flush, and the once-a-minute prune, are due

        async def pruned() -> bool:  # records and logs go in separate statements
            records = [r.request_id for r in await store.invocations()]
            return records == ["new"] and await store.logs() == []

        await _eventually(pruned, "the old record and its log lines to be pruned")
    finally:
        await recorder.stop()


async def test_each_record_reaches_the_metrics_once_and_the_store_too(store: Store) -> None:
    seen: list[str] = []
    recorder = Recorder(
        store, FakeClock(), on_records=lambda batch: seen.extend(row[0] for row in batch)
    )
    recorder.invocation(_record("a", 1))
    recorder.invocation(_record("b", 2))
    recorder.hand_over()  # what a metrics scrape does: counted now, written later
    assert seen == ["a", "b"]
    assert await store.invocations() == []
    recorder.invocation(_record("c", 3))
    await recorder.flush()
    recorder.hand_over()  # nothing new
    await recorder.flush()
    assert seen == ["a", "b", "c"]
    assert sorted(r.request_id for r in await store.invocations()) == ["a", "b", "c"]


async def test_records_and_lines_past_the_buffer_bound_are_dropped_oldest_first_and_counted(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that cannot keep up never grows the platform's memory past `max_buffered`
    records and as many log lines: the oldest go (a pack at a time), the newest are written,
    and the loss is counted, not silent."""
    seen: list[str] = []
    recorder = Recorder(
        store,
        FakeClock(),
        max_buffered=2 * PACK,
        on_records=lambda batch: seen.extend(row[0] for row in batch),
    )
    sent = [f"r{i:05d}" for i in range(3 * PACK + 10)]
    for i, rid in enumerate(sent):  # nothing written in between: the store is "slow"
        recorder.invocation(_record(rid, i))
        recorder.output(None, "svc.fn", rid, "i1", "stdout", f"line of {rid}")
    await recorder.flush()

    stored = sorted(r.request_id for r in await store.invocations(limit=10 * PACK))
    lines = [line.message for line in await store.logs(limit=10 * PACK)]
    assert 0 < len(stored) <= 2 * PACK
    assert 0 < len(lines) <= 2 * PACK
    assert stored == sent[-len(stored) :], "the newest records are the ones kept"
    assert lines == [f"line of {rid}" for rid in sent[-len(lines) :]], "and the newest lines"
    assert recorder.dropped == 2 * len(sent) - len(stored) - len(lines)
    assert seen == sent, "dropped or not, every record was counted by the metrics"
    warned = [r for r in caplog.records if "dropped unwritten" in r.getMessage()]
    assert [r.levelname for r in warned] == ["WARNING"], "the loss is told once, as a warning"


async def test_rows_the_store_cannot_pack_are_dropped_and_counted_not_raised(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packing runs on the request path: a failure there must cost the rows, not the request."""
    pack = store.pack_rows
    broken = True

    def pack_once_broken(table: TelemetryTable, rows: Sequence[Sequence[object]]) -> PackedRows:
        if broken:
            raise TypeError("a value the store cannot encode")
        return pack(table, rows)

    monkeypatch.setattr(store, "pack_rows", pack_once_broken)
    recorder = Recorder(store, FakeClock())
    for i in range(PACK):  # the PACK-th record packs them: the failure happens here
        recorder.invocation(_record(f"lost{i}", i))
    broken = False
    recorder.invocation(_record("kept", PACK))
    await recorder.flush()

    assert recorder.dropped == PACK
    assert [r.request_id for r in await store.invocations()] == ["kept"]


class _Sink:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.closed = False

    def submit(self, records: Sequence[InvocationRow]) -> None:
        self.batches.append([row[0] for row in records])

    def close(self) -> None:
        self.closed = True


async def test_each_flushed_batch_goes_to_the_span_sink_which_is_closed_at_stop(
    store: Store,
) -> None:
    sink = _Sink()
    recorder = Recorder(store, FakeClock(), spans=sink)
    recorder.invocation(_record("a", 1))
    recorder.invocation(_record("b", 2))
    await recorder.flush()
    await recorder.flush()  # nothing new: nothing handed over
    recorder.invocation(_record("c", 3))
    await recorder.stop()

    assert sink.batches == [["a", "b"], ["c"]]
    assert sink.closed
    assert len(await store.invocations()) == 3


async def test_what_a_failed_flush_did_not_write_is_written_by_the_next_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that is down for a moment (a PostgreSQL restart) costs no record or line, and
    no record is exported as a span twice."""
    from lamina.errors import StoreUnavailable

    written = store.add_packed
    down = True

    async def flaky(table: TelemetryTable, packs: Sequence[PackedRows]) -> None:
        if down:
            raise StoreUnavailable("the store is restarting", url="test")
        await written(table, packs)

    monkeypatch.setattr(store, "add_packed", flaky)
    sink = _Sink()
    recorder = Recorder(store, FakeClock(), spans=sink)
    recorder.invocation(_record("a", 1))
    recorder.output(None, "svc.fn", "a", "i1", "stdout", "first")
    with pytest.raises(StoreUnavailable):
        await recorder.flush()
    down = False
    recorder.invocation(_record("b", 2))
    recorder.output(None, "svc.fn", "b", "i1", "stdout", "second")
    await recorder.flush()

    assert sorted(r.request_id for r in await store.invocations()) == ["a", "b"]
    assert [line.message for line in await store.logs()] == ["first", "second"]
    assert sink.batches == [["a", "b"]]
    assert recorder.dropped == 0


async def test_flush_returns_once_a_flush_already_under_way_has_written_too(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = store.add_packed
    store_may_write = asyncio.Event()

    async def held(table: TelemetryTable, packs: Sequence[PackedRows]) -> None:
        await store_may_write.wait()
        await written(table, packs)

    monkeypatch.setattr(store, "add_packed", held)
    recorder = Recorder(store, FakeClock())
    recorder.invocation(_record("a", 1))
    background = asyncio.create_task(recorder.flush())  # as the once-a-second flush does
    await asyncio.sleep(0)  # it has taken "a" and waits for the store
    asked = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0)
    assert not asked.done(), "flush() returned before the record recorded earlier was written"
    store_may_write.set()
    await asyncio.gather(background, asked)
    assert [r.request_id for r in await store.invocations()] == ["a"]


async def test_a_store_down_for_minutes_is_told_once_a_minute_not_at_every_flush(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Five minutes of a store that refuses every write (flushes a second apart): the log gets
    the first failure with its traceback, a line a minute after it, one when writing works
    again; and the record waiting all along is written then."""
    from lamina.errors import StoreUnavailable

    written = store.add_packed
    attempted = asyncio.Event()
    down = True

    async def flaky(table: TelemetryTable, packs: Sequence[PackedRows]) -> None:
        attempted.set()
        if down:
            raise StoreUnavailable("the store is restarting", url="test")
        await written(table, packs)

    monkeypatch.setattr(store, "add_packed", flaky)
    clock = FakeClock(start_s=0)
    recorder = Recorder(store, clock, flush_interval_s=1.0)
    recorder.invocation(_record("kept", int(clock.wall() * 1000)))  # within the retention
    caplog.set_level("INFO", logger="lamina.telemetry.recorder")
    recorder.start()
    try:
        await asyncio.sleep(0)  # the writer task arms its timer before time moves
        for _ in range(300):
            clock.advance(1.0)
            await asyncio.wait_for(attempted.wait(), 5)  # and has armed it again after
            attempted.clear()
        down = False
        clock.advance(1.0)

        async def kept() -> bool:
            back = any(r.getMessage().endswith("works again") for r in caplog.records)
            return back and [r.request_id for r in await store.invocations()] == ["kept"]

        await _eventually(kept, "the waiting record to be written once the store is back")
    finally:
        await recorder.stop()

    told = [r for r in caplog.records if r.name == "lamina.telemetry.recorder"]
    assert [r.getMessage() for r in told] == [
        "writing invocation records and logs failed; retrying at every flush",
        *["writing invocation records and logs still fails"] * 4,  # at 61, 121, 181, 241 s
        "writing invocation records and logs works again",
    ]
    assert told[0].exc_info is not None and told[0].waiting == 1  # type: ignore[attr-defined]
    assert [r.failing_for_s for r in told[1:5]] == [60, 120, 180, 240]  # type: ignore[attr-defined]
    assert told[1].error == "StoreUnavailable: store test: the store is restarting"  # type: ignore[attr-defined]
    assert told[5].failed_attempts == 300  # type: ignore[attr-defined]


async def test_a_store_that_fails_and_works_by_turns_is_told_about_once_a_minute(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two minutes of a store whose every other write fails (a locked file, a flaky link):
    a failure and its recovery are told once a minute, the failures in between only counted;
    every record is written."""
    from lamina.errors import StoreUnavailable

    written = store.add_packed
    attempted = asyncio.Event()
    attempts = 0

    async def by_turns(table: TelemetryTable, packs: Sequence[PackedRows]) -> None:
        nonlocal attempts
        attempts += 1
        try:
            if attempts % 2:
                raise StoreUnavailable("the store is busy", url="test")
            await written(table, packs)
        finally:
            attempted.set()  # after the write: the flush then ends without waiting again

    async def no_prune(**_: object) -> int:
        return 0

    monkeypatch.setattr(store, "add_packed", by_turns)
    monkeypatch.setattr(store, "prune_telemetry", no_prune)
    clock = FakeClock(start_s=0)
    recorder = Recorder(store, clock, flush_interval_s=1.0)
    caplog.set_level("INFO", logger="lamina.telemetry.recorder")
    recorder.start()
    try:
        await asyncio.sleep(0)  # the writer task arms its timer before time moves
        for second in range(120):
            recorder.invocation(_record(f"r{second}", int(clock.wall() * 1000)))
            clock.advance(1.0)
            await asyncio.wait_for(attempted.wait(), 5)
            attempted.clear()
    finally:
        await recorder.stop()

    assert [r.getMessage() for r in caplog.records if r.name == "lamina.telemetry.recorder"] == [
        "writing invocation records and logs failed; retrying at every flush",  # at 1 s
        "writing invocation records and logs works again",
        "writing invocation records and logs failed; retrying at every flush",  # at 61 s
        "writing invocation records and logs works again",
    ]
    assert len(await store.invocations(limit=1000)) == 120
