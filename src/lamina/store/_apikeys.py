"""SQL and row mapping for gateway API keys, shared by both backends (`?` placeholders;
PostgreSQL's backend swaps in `%s` with `pg`)."""

from __future__ import annotations

from typing import Any

from lamina.store.types import ApiKey

__all__ = ["ADD_KEY", "ADD_USAGE", "KEYS", "REVOKE_KEY", "USAGE", "key_from_row", "key_row", "pg"]

_COLUMNS = "id, name, key_hash, rate, burst, quota_per_day, created_ms, revoked_ms"
ADD_KEY = f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
KEYS = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_ms, id"
REVOKE_KEY = "UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL"
ADD_USAGE = """INSERT INTO api_key_usage (key_id, day, count) VALUES (?, ?, ?)
  ON CONFLICT (key_id, day) DO UPDATE SET count = api_key_usage.count + excluded.count"""
USAGE = "SELECT key_id, count FROM api_key_usage WHERE day = ?"


def pg(query: str) -> str:
    return query.replace("?", "%s")


def key_row(key: ApiKey) -> tuple[Any, ...]:
    return (
        key.id,
        key.name,
        key.key_hash,
        key.rate,
        key.burst,
        key.quota_per_day,
        key.created_ms,
        key.revoked_ms,
    )


def key_from_row(row: tuple[Any, ...]) -> ApiKey:
    id_, name, key_hash, rate, burst, quota, created_ms, revoked_ms = row
    return ApiKey(
        id=id_,
        name=name,
        key_hash=key_hash,
        rate=None if rate is None else float(rate),
        burst=None if burst is None else int(burst),
        quota_per_day=None if quota is None else int(quota),
        created_ms=int(created_ms),
        revoked_ms=None if revoked_ms is None else int(revoked_ms),
    )
