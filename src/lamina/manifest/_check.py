"""Checks for one value at one key path, raising ManifestError with file, path and line.

Every message says what was expected and what was got, e.g.
`expected an integer 128-10240 (MB), got 64` or `expected a string, got a list`.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from lamina.errors import ManifestError
from lamina.manifest._yamlpos import Lines, child, parent

__all__ = ["Checker", "build", "describe", "unknown_key"]

_M = TypeVar("_M", bound=BaseModel)
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def describe(value: Any) -> str:
    """How a got value reads in a message: `64`, `'abc'`, `a list`, `null`, `true`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} ({value})"


class Checker:
    """Knows the file and the line of every key path; raises errors located there."""

    def __init__(self, file: str, lines: Lines) -> None:
        self.file = file
        self._lines = lines

    def line(self, path: str) -> int | None:
        """The line of `path`, or of its nearest ancestor written in the file."""
        while path not in self._lines:
            if not path:
                return None
            path = parent(path)
        return self._lines[path]

    def fail(self, path: str, message: str, *, at: str | None = None) -> NoReturn:
        """Raise an error about `path`, located at the line of `at` (default: `path`)."""
        raise ManifestError(
            message, file=self.file, path=path, line=self.line(path if at is None else at)
        )

    def mapping(
        self,
        value: Any,
        path: str,
        *,
        allowed: Collection[str] | None = None,
        required: Collection[str] = (),
        what: str = "a mapping",
    ) -> dict[str, Any]:
        """Check a mapping, its keys against `allowed` and presence of `required`; null is {}."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(path, f"expected {what}, got {describe(value)}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.fail(path, unknown_key(key, allowed), at=child(path, key))
        for key in required:
            if key not in value:
                self.fail(path, f"missing required key {key!r}")
        return value

    def sequence(self, value: Any, path: str, *, what: str = "a list") -> list[Any]:
        """Check a list; null is the empty list."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected {what}, got {describe(value)}")
        return value

    def string(self, value: Any, path: str, *, what: str = "a string") -> str:
        """Check a non-empty string."""
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected {what}, got {describe(value)}")
        return value

    def name(self, value: Any, path: str, *, max_len: int | None = None) -> str:
        """Check a name of letters, digits, `_` and `-` (no dots: ids use dots)."""
        limit = f", at most {max_len} characters" if max_len else ""
        what = f"a name of letters, digits, '_' or '-'{limit}"
        if (
            not isinstance(value, str)
            or not _NAME.match(value)
            or (max_len is not None and len(value) > max_len)
        ):
            self.fail(path, f"expected {what}, got {describe(value)}")
        return value

    def integer(self, value: Any, path: str, lo: int, hi: int | None, unit: str = "") -> int:
        """Check an integer in [lo, hi] (hi None: no upper bound)."""
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if is_int and lo <= value and (hi is None or value <= hi):
            return int(value)
        bounds = f"{lo}-{hi}" if hi is not None else f">= {lo}"
        suffix = f" ({unit})" if unit else ""
        self.fail(path, f"expected an integer {bounds}{suffix}, got {describe(value)}")

    def seconds(
        self,
        value: Any,
        path: str,
        *,
        positive: bool,
        hi: float | None = None,
        alternative: str | None = None,
    ) -> float:
        """Check a number of seconds: > 0 (positive) or >= 0, and <= hi when given.

        `alternative` names another accepted value for the message, e.g. `'auto'`.
        """
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            low_ok = value > 0 if positive else value >= 0
            if low_ok and (hi is None or value <= hi):
                return float(value)
        bounds = "> 0" if positive else ">= 0"
        if hi is not None:
            bounds += f" and <= {hi:g}"
        if alternative is not None:
            bounds += f" or {alternative}"
        self.fail(path, f"expected a number of seconds {bounds}, got {describe(value)}")


def unknown_key(key: str, allowed: Collection[str], noun: str = "key") -> str:
    """`unknown key 'timout'; did you mean 'timeout'?`, or the list of allowed keys."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    if close:
        return f"unknown {noun} {key!r}; did you mean {close[0]!r}?"
    return f"unknown {noun} {key!r}; expected one of: {', '.join(allowed)}"


def build(check: Checker, model: type[_M], at: str, /, **fields: Any) -> _M:
    """Construct `model`; a pydantic ValidationError becomes a ManifestError under `at`.

    The loader checks every value before building, so this is a safety net that keeps
    pydantic's wording and tracebacks away from users if a check is ever missing.
    """
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        for part in first["loc"]:
            at = child(at, part if isinstance(part, int) else str(part))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] != "value_error":
            message = f"{message}, got {describe(first.get('input'))}"
        check.fail(at, message)
