"""The SQLite store's telemetry writer process: records and lines are committed by a child,
visible to the store's own reads at once, and a child that died is replaced without losing the
batch it was handed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lamina.errors import StoreUnavailable
from lamina.store._rows import log_row
from lamina.store.sqlite import SqliteStore
from lamina.store.types import InvocationRecord, LogLine

NOW = 1_700_000_000_000


def _record(n: int) -> InvocationRecord:
    return InvocationRecord(
        f"req-{n}", "svc.fn", "http", NOW + n, 1.5, 2, None, False, 128, 40, "ok"
    )


def _line(n: int) -> LogLine:
    return LogLine(NOW + n, "svc.fn", f"req-{n}", "i-1", "stdout", "INFO", f"line {n}")


async def test_the_writer_child_commits_what_the_store_reads(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "lamina.db") as store:
        await store.add_invocations([_record(1), _record(2)])
        await store.add_logs([_line(1), _line(2)])

        assert [r.request_id for r in await store.invocations()] == ["req-2", "req-1"]
        assert [line.message for line in await store.logs()] == ["line 1", "line 2"]
        assert store._writer is not None and store._writer._proc is not None
        child = store._writer._proc
    assert child.returncode == 0  # closing the store ends the child


async def test_packs_written_together_land_as_their_rows_in_order_empty_ones_too(
    tmp_path: Path,
) -> None:
    async with SqliteStore(tmp_path / "lamina.db") as store:
        packs = [
            store.pack_rows("logs", [log_row(_line(n)) for n in ns]) for ns in ([1, 2], [], [3])
        ]
        await store.add_packed("logs", packs)
        await store.add_packed("logs", packs[1:2])  # nothing but an empty pack
        assert [line.message for line in await store.logs()] == ["line 1", "line 2", "line 3"]


async def test_a_writer_child_that_died_is_replaced_and_the_batch_still_lands(
    tmp_path: Path,
) -> None:
    async with SqliteStore(tmp_path / "lamina.db") as store:
        await store.add_invocations([_record(1)])
        assert store._writer is not None and store._writer._proc is not None
        first = store._writer._proc
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()

        await store.add_invocations([_record(2)])

        assert store._writer._proc is not None and store._writer._proc.pid != first.pid
        assert [r.request_id for r in await store.invocations()] == ["req-2", "req-1"]


async def test_a_failed_insert_is_reported_with_the_store_url(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "lamina.db") as store:
        await store._call(lambda: store._connection().execute("DROP TABLE logs"))

        with pytest.raises(StoreUnavailable, match="no such table: logs") as caught:
            await store.add_logs([_line(1)])
        assert str(tmp_path) in str(caught.value)
        await store.add_invocations([_record(1)])  # the child keeps serving
        assert len(await store.invocations()) == 1
