"""Request ids: UUID-shaped like AWS's, unique per platform, cheap enough for every request."""

from __future__ import annotations

import itertools
import secrets

__all__ = ["new_request_id"]

_r = secrets.token_hex(8)
# 64 random bits fixed per process, RFC 4122 version 4 and variant bits, then a 48-bit counter
# that starts at a random value: ids never repeat within a process and are unguessable across.
_PREFIX = (
    f"{_r[:8]}-{_r[8:12]}-4{_r[12:15]}-{'89ab'[int(_r[15], 16) % 4]}{secrets.token_hex(2)[:3]}-"
)
_counter = itertools.count(secrets.randbits(47))


def new_request_id() -> str:
    """A new id such as `3f2a9c1e-7b4d-4e21-a9c3-00005a1b2c3d`."""
    return f"{_PREFIX}{next(_counter) & 0xFFFFFFFFFFFF:012x}"
