"""Platform log formatting: a readable console form for people, JSON lines for machines."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

__all__ = ["ConsoleFormatter", "JsonFormatter", "configure_logging"]

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class ConsoleFormatter(logging.Formatter):
    """`12:00:01 INFO  invoker.pool  scaling  function_id=users.signup reason='scale 0 -> 1'`"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        name = record.name.removeprefix("lamina.")
        fields = " ".join(
            f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}"
            for k, v in _fields(record).items()
        )
        line = f"{stamp} {record.levelname:<5} {name}  {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Send `lamina.*` records to stderr in the chosen form."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else ConsoleFormatter())
    root = logging.getLogger("lamina")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
