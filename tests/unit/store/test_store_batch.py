"""Batch inserts of telemetry rows (the writer process's)."""

from __future__ import annotations

import sqlite3

from lamina.store._batch import BatchInsert


def test_rows_go_in_order_in_chunks_with_a_pause_between_each() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    pauses: list[int] = []

    def pause() -> None:  # what the writer hands the CPU back at
        pauses.append(conn.execute("SELECT count(*) FROM t").fetchone()[0])

    rows = [(i, f"row {i}") for i in range(600)]
    BatchInsert("t", ["a", "b"]).run(rows, conn, between=pause)
    assert conn.execute("SELECT a, b FROM t ORDER BY rowid").fetchall() == rows
    # 600 rows: chunks of 256, 256, 64, 16 and 8, a pause after each but the last
    assert pauses == [256, 512, 576, 592]


def test_a_batch_of_one_chunk_has_no_pause() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER)")
    pauses: list[None] = []
    BatchInsert("t", ["a"]).run([(1,), (2,)], conn, between=lambda: pauses.append(None))
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    assert pauses == []
