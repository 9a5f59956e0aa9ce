"""SQL and row mapping for deploys, function versions and aliases, shared by both backends
(`?` placeholders; PostgreSQL's backend swaps in `%s` with `_apikeys.pg`)."""

from __future__ import annotations

from typing import Any

from lamina.store.types import AliasRecord, DeployRecord, FunctionVersion

__all__ = [
    "ADD_DEPLOY",
    "ADD_VERSION",
    "ALIASES",
    "DELETE_ALIAS",
    "LAST_DEPLOY",
    "RECENT_DEPLOYS",
    "SET_ALIAS",
    "VERSIONS",
    "alias_from_row",
    "alias_row",
    "deploy_from_row",
    "version_from_row",
    "version_row",
    "where_function",
]

_VERSION_COLUMNS = "function_id, version, code_hash, config_hash, bundle, spec, created_ms"
_ALIAS_COLUMNS = (
    "function_id, name, version, canary_version, canary_weight, previous_version, updated_ms"
)
ADD_VERSION = f"INSERT INTO function_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
VERSIONS = f"SELECT {_VERSION_COLUMNS} FROM function_versions"
SET_ALIAS = f"""INSERT INTO function_aliases ({_ALIAS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (function_id, name) DO UPDATE SET version = excluded.version,
  canary_version = excluded.canary_version, canary_weight = excluded.canary_weight,
  previous_version = excluded.previous_version, updated_ms = excluded.updated_ms"""
ALIASES = f"SELECT {_ALIAS_COLUMNS} FROM function_aliases"
DELETE_ALIAS = "DELETE FROM function_aliases WHERE function_id = ? AND name = ?"
ADD_DEPLOY = "INSERT INTO deploys (bundle, app, created_ms) VALUES (?, ?, ?)"
LAST_DEPLOY = "SELECT id, bundle, app, created_ms FROM deploys ORDER BY id DESC LIMIT 1"
RECENT_DEPLOYS = "SELECT id, bundle, app, created_ms FROM deploys ORDER BY id DESC LIMIT ?"


def where_function(select: str, function_id: str | None, order: str) -> tuple[str, tuple[Any, ...]]:
    """`select` filtered to one function when given, ordered by `order`."""
    if function_id is None:
        return f"{select} ORDER BY {order}", ()
    return f"{select} WHERE function_id = ? ORDER BY {order}", (function_id,)


def version_row(v: FunctionVersion) -> tuple[Any, ...]:
    return (v.function_id, v.version, v.code_hash, v.config_hash, v.bundle, v.spec, v.created_ms)


def version_from_row(row: tuple[Any, ...]) -> FunctionVersion:
    fid, version, code_hash, config_hash, bundle, spec, created_ms = row
    return FunctionVersion(fid, int(version), code_hash, config_hash, bundle, spec, int(created_ms))


def alias_row(a: AliasRecord) -> tuple[Any, ...]:
    return (
        a.function_id,
        a.name,
        a.version,
        a.canary_version,
        a.canary_weight,
        a.previous_version,
        a.updated_ms,
    )


def alias_from_row(row: tuple[Any, ...]) -> AliasRecord:
    fid, name, version, canary, weight, previous, updated_ms = row
    return AliasRecord(
        fid,
        name,
        int(version),
        None if canary is None else int(canary),
        int(weight),
        None if previous is None else int(previous),
        int(updated_ms),
    )


def deploy_from_row(row: tuple[Any, ...]) -> DeployRecord:
    id_, bundle, app, created_ms = row
    return DeployRecord(int(id_), bundle, app, int(created_ms))
