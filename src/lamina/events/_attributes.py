"""Message attributes of queue and topic messages: checked when sent, kept as JSON in the store.

Function code passes plain values (see `shapes.AttributeValue`): str, int or float, bytes, and
for topics a list of str/number/bool/None. In the store a bytes value becomes
`{"Binary": <base64>}`; everything else is kept as given.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from lamina.errors import InvalidMessage
from lamina.events.shapes import AttributeValue

__all__ = ["MAX_ATTRIBUTES", "MAX_MESSAGE_BYTES", "decode_attributes", "encode_attributes"]

MAX_MESSAGE_BYTES = 1024 * 1024  # 1 MiB: SQS's message limit and async Lambda's payload limit
MAX_ATTRIBUTES = 10  # per message, as SQS and SNS allow


def encode_attributes(
    where: str, attributes: Mapping[str, Any] | None, *, arrays: bool
) -> dict[str, Any]:
    """Check `attributes` and return their stored form; InvalidMessage says what is wrong."""
    if not attributes:
        return {}
    if not isinstance(attributes, Mapping):
        raise InvalidMessage(f"{where}: attributes: expected a mapping, got {attributes!r}")
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidMessage(
            f"{where}: attributes: at most {MAX_ATTRIBUTES} are allowed, got {len(attributes)}"
        )
    stored: dict[str, Any] = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not name:
            raise InvalidMessage(f"{where}: attribute names must be non-empty strings: {name!r}")
        stored[name] = _encode(where, name, value, arrays=arrays)
    return stored


def _encode(where: str, name: str, value: Any, *, arrays: bool) -> Any:
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    if isinstance(value, bytes | bytearray):
        return {"Binary": base64.b64encode(bytes(value)).decode("ascii")}
    if arrays and isinstance(value, list | tuple):
        for item in value:
            if not (item is None or isinstance(item, str | int | float | bool)):
                raise InvalidMessage(
                    f"{where}: attribute {name!r}: list items must be str, number, bool or"
                    f" None, got {item!r}"
                )
        return list(value)
    expected = "str, int, float, bytes" + (" or a list" if arrays else "")
    raise InvalidMessage(f"{where}: attribute {name!r}: expected {expected}, got {value!r}")


def decode_attributes(stored: Any) -> dict[str, AttributeValue]:
    """The attributes as the sender gave them (bytes back as bytes)."""
    if not isinstance(stored, Mapping):
        return {}
    return {
        name: base64.b64decode(value["Binary"])
        if isinstance(value, Mapping) and "Binary" in value
        else value
        for name, value in stored.items()
    }
