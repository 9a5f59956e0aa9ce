"""Row <-> record conversion shared by the backends: JSON columns, ids, `Message` building."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from lamina.store.types import Message, NewMessage

__all__ = [
    "COLUMNS",
    "dump_json",
    "first_duplicate",
    "load_json",
    "message_from_row",
    "new_id",
    "redact",
]

# The column order every backend selects and `message_from_row` expects (seq first).
COLUMNS = (
    "seq",
    "id",
    "queue",
    "body",
    "attributes",
    "created_ms",
    "receive_count",
    "first_received_ms",
    "lease_token",
    "visible_ms",
    "last_error",
)


def new_id() -> str:
    return str(uuid.uuid4())


def dump_json(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value if isinstance(value, dict) else dict(value)).decode()


def load_json(text: str | bytes | None) -> dict[str, Any] | None:
    if text is None:
        return None
    loaded: dict[str, Any] = orjson.loads(text)
    return loaded


def message_from_row(row: Sequence[Any]) -> Message:
    """Build a `Message` from a row in `COLUMNS` order."""
    return Message(
        id=row[1],
        queue=row[2],
        body=bytes(row[3]),
        attributes=load_json(row[4]) or {},
        created_ms=row[5],
        receive_count=row[6],
        first_received_ms=row[7],
        lease_token=row[8],
        visible_ms=row[9],
        last_error=load_json(row[10]),
    )


def first_duplicate(messages: Sequence[NewMessage], ids: Sequence[str]) -> tuple[str, str] | None:
    """The first (queue, id) that occurs twice within one enqueue batch, if any."""
    seen: set[tuple[str, str]] = set()
    for message, message_id in zip(messages, ids, strict=True):
        key = (message.queue, message_id)
        if key in seen:
            return key
        seen.add(key)
    return None


def redact(url: str) -> str:
    """`url` with its password replaced by `***`, for error messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparsable URL>"
