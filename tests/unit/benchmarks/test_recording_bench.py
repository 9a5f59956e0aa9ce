"""benchmarks/recording.py, at a size that runs in seconds: every part it reports is measured
on the real pool, recorder, store and schema (an index it names that the schema lost fails)."""

from __future__ import annotations

import sqlite3

import pytest
import recording


def test_the_platform_part_measures_each_mode_and_recording_costs_cpu() -> None:
    medians = recording.platform_thread(runs=1, invocations=6400)
    assert set(medians) == {"off", "request", "packed", "all", "line"}
    assert all(us > 0 for us in medians.values())  # and "all" checked that it stored them


@pytest.mark.parametrize("table", ["invocations", "logs"])
def test_the_writer_part_inserts_real_rows_with_and_without_each_index(table: str) -> None:
    decode, insert = recording.writer_row_us(table, None, seconds=2)
    assert decode > 0 and insert > 0
    for index in recording.INDEXES[table]:
        assert recording.writer_row_us(table, index, seconds=2)[1] > 0
    with pytest.raises(sqlite3.OperationalError, match="no such index"):
        recording.writer_row_us(table, f"{table}_gone", seconds=2)
