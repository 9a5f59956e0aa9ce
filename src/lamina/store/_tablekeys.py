"""Keys of service tables as the database stores them: one text column per key part whose byte
order is the order users expect, the same on SQLite and PostgreSQL.

A key value is a string or a number (bool is not a number here). The encoded form is a tag and
a body, compared bytewise (SQLite BINARY, PostgreSQL `COLLATE "C"`):
- a number is `n` + 16 hex digits of its IEEE 754 double, bits flipped so that the hex digits
  sort numerically: -1.5 < 0 < 2 < 10 (`test_number_keys_sort_numerically`);
- a string is `s` + the string: code point order, since UTF-8 bytes sort like code points;
- every number sorts before every string (`n` < `s`).
Numbers are keys by value: `1` and `1.0` are the same key. Integers must be within +-2**53
(exact in a double). The table without a sort key stores `""` as its sort part.

Cursors are opaque to users: URL-safe base64 of `[table, partition, sort]`, encoded keys.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any

import orjson

from lamina.errors import TableError

__all__ = [
    "MAX_INT",
    "NO_SORT",
    "check_attribute",
    "decode_cursor",
    "encode_cursor",
    "encode_key",
    "prefix_range",
]

MAX_INT = 2**53  # integers beyond this are not exact in a double: refused as keys
NO_SORT = ""  # the sort part of every item of a table without a sort key
_MAX_CODE_POINT = 0x10FFFF
_SIGN = 1 << 63
_ALL = (1 << 64) - 1
_PACK = struct.Struct(">d")
_UNPACK = struct.Struct(">Q")


def encode_key(table: str, value: Any, what: str) -> str:
    """The stored form of key value `value`; `what` names it in errors (e.g. "key 'id'")."""
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            raise TableError(table, f"{what}: a key string cannot contain NUL (\\x00)")
        text: str = value
        return "s" + text
    if kind is int:
        if -MAX_INT <= value <= MAX_INT:
            return _number(float(value))
        raise TableError(table, f"{what}: expected an integer within +-2**53, got {value}")
    if kind is float:
        if math.isfinite(value):
            return _number(value)
        raise TableError(table, f"{what}: expected a finite number, got {value}")
    if isinstance(value, str):  # str subclasses (enums): their str value
        return encode_key(table, str(value), what)
    if isinstance(value, int) and not isinstance(value, bool):
        return encode_key(table, int(value), what)
    raise TableError(
        table, f"{what}: expected a string or a number, got {type(value).__name__} {value!r}"
    )


def _number(value: float) -> str:
    bits: int = _UNPACK.unpack(_PACK.pack(value + 0.0))[0]  # + 0.0 turns -0.0 into 0.0
    bits = (bits ^ _ALL) if bits & _SIGN else (bits | _SIGN)
    return f"n{bits:016x}"


def prefix_range(table: str, prefix: Any) -> tuple[str, str | None]:
    """The encoded range [low, high) of string sort keys starting with `prefix`; `high` is None
    when there is no upper bound. Example: "ab" gives ["sab", "sac")."""
    if not isinstance(prefix, str):
        raise TableError(table, f"prefix: expected a string, got {type(prefix).__name__}")
    low = encode_key(table, prefix, "prefix")
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if 0xD800 <= point <= 0xDFFF:  # surrogates are not stored: the next one is U+E000
            point = 0xE000
        if point <= _MAX_CODE_POINT:
            return low, "s" + "".join(chars) + chr(point)
    return low, "t"  # every string, and nothing after strings


def check_attribute(table: str, name: Any, what: str) -> str:
    """An attribute name usable in an update: a non-empty string without `"` or `\\`."""
    if not isinstance(name, str) or not name or '"' in name or "\\" in name or "\x00" in name:
        raise TableError(
            table,
            f"{what}: expected an attribute name (a non-empty string without quotes or"
            f" backslashes), got {name!r}",
        )
    return name


def encode_cursor(table: str, partition: str, sort: str) -> str:
    """An opaque cursor that resumes a page after the item with this (encoded) key."""
    return base64.urlsafe_b64encode(orjson.dumps([table, partition, sort])).decode().rstrip("=")


def decode_cursor(table: str, cursor: Any) -> tuple[str, str]:
    """The (partition, sort) a cursor of `table` resumes after; a clear error for anything else."""
    if not isinstance(cursor, str):
        raise TableError(table, f"cursor: expected a string from a page, got {cursor!r}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):
        value = None
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(part, str) for part in value)
    ):
        raise TableError(table, f"cursor: not a cursor from a page of this table: {cursor!r}")
    if value[0] != table:
        raise TableError(table, f"cursor: it is a cursor of table {value[0]!r}")
    return value[1], value[2]
