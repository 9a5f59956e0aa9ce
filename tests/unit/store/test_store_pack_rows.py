"""Rows packed for the SQLite store's writer process: what goes in comes out of the frame."""

from __future__ import annotations

import orjson

from lamina.store._writer import pack_rows


def test_packed_rows_decode_to_the_rows_with_nulls_and_booleans_kept() -> None:
    rows = [("r1", 1.5, None, True), ("r2", 2.0, 7, False)]
    assert orjson.loads(pack_rows(rows)) == [list(row) for row in rows]


def test_text_utf8_cannot_hold_is_packed_with_a_replacement_character_not_refused() -> None:
    """A lone surrogate in an error type must not make recording raise on the request path."""
    [[rid, text, null]] = orjson.loads(pack_rows([("r1", "Bad\ud800Error", None)]))
    assert (rid, null) == ("r1", None)
    assert text.startswith("Bad\ufffd") and text.endswith("\ufffdError"), text
