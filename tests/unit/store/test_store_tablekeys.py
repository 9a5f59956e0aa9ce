"""Encoded table keys sort the way users expect, the same on every backend (bytewise)."""

from __future__ import annotations

import random

import pytest

from lamina.errors import TableError
from lamina.store._tablekeys import (
    decode_cursor,
    encode_cursor,
    encode_key,
    prefix_range,
)


def enc(value: object) -> bytes:
    return encode_key("t", value, "key").encode()  # bytewise, as SQLite BINARY and COLLATE "C"


def test_number_keys_sort_numerically() -> None:
    numbers = [-1e300, -(2**53), -10, -1.5, -1, -0.001, 0, 1e-300, 0.5, 1, 2, 9, 10, 100, 2**53]
    shuffled = numbers[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=enc) == numbers


def test_string_keys_sort_by_code_point_and_after_numbers() -> None:
    strings = ["", "A", "B", "a", "ab", "abc", "b", "é", "中", "\U0001f600"]
    assert sorted([*reversed(strings), 5, -3], key=enc) == [-3, 5, *strings]


def test_equal_numbers_are_one_key() -> None:
    assert enc(1) == enc(1.0)
    assert enc(0.0) == enc(-0.0)


@pytest.mark.parametrize(
    ("prefix", "inside", "outside"),
    [
        ("ab", ["ab", "abc", "ab\U0010ffff"], ["aa", "ac", "b", "a"]),
        ("", ["", "x", "\U0010ffff"], []),
        ("a\U0010ffff", ["a\U0010ffff", "a\U0010ffffz"], ["b", "a"]),
        ("\ud7ff", ["\ud7ffx"], ["\ue000"]),
    ],
    ids=[
        "a plain prefix",
        "the empty prefix matches every string",
        "a prefix ending in the last code point",
        "a prefix before the surrogates",
    ],
)
def test_prefix_range_holds_exactly_the_strings_with_the_prefix(
    prefix: str, inside: list[str], outside: list[str]
) -> None:
    low, high = prefix_range("t", prefix)
    assert high is not None

    def within(value: object) -> bool:
        return low.encode() <= enc(value) < high.encode()

    assert all(within(s) for s in inside)
    assert not any(within(s) for s in [*outside, 5, -1.5])


def test_cursors_round_trip_and_belong_to_their_table() -> None:
    cursor = encode_cursor("orders", "sab", "n8000000000000000")
    assert decode_cursor("orders", cursor) == ("sab", "n8000000000000000")
    with pytest.raises(TableError, match="it is a cursor of table 'orders'"):
        decode_cursor("events", cursor)
    with pytest.raises(TableError, match="not a cursor from a page"):
        decode_cursor("orders", "%%%")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "expected a string or a number, got bool"),
        (None, "expected a string or a number, got NoneType"),
        (2**53 + 1, "expected an integer within"),
        (float("inf"), "expected a finite number"),
        ("a\x00", "cannot contain NUL"),
    ],
    ids=["bool", "None", "a big integer", "infinity", "NUL"],
)
def test_unusable_key_values_are_refused(value: object, message: str) -> None:
    with pytest.raises(TableError, match=message):
        encode_key("t", value, "key 'id'")
