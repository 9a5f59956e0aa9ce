"""PostgreSQL statements for control planes and their instance leases (migration 5).

A lease counts against its function's `max_instances` only while its plane's row is
unexpired, so a plane that dies without cleaning up (SIGKILL, a lost machine) gives its
capacity back once its heartbeat expires, with no sweeper needed. Acquiring takes a
transaction-level advisory lock per function, so two planes counting at once cannot both take
the last free lease.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import psycopg

from lamina.store.types import ControlPlane

__all__ = ["acquire", "control_planes", "drop", "heartbeat", "release"]

_EXTEND = "UPDATE control_planes SET expires_ms = %s WHERE plane_id = %s"
_INSERT_PLANE = """INSERT INTO control_planes
  (plane_id, started_ms, expires_ms, gateway_url, admin_url) VALUES (%s, %s, %s, %s, %s)
  ON CONFLICT (plane_id) DO UPDATE SET expires_ms = excluded.expires_ms"""
_INSERT_LEASE = """INSERT INTO instance_leases (lease_id, function_id, plane_id, since_ms)
  VALUES (%s, %s, %s, %s) ON CONFLICT (lease_id) DO NOTHING"""
_FORGET = "DELETE FROM instance_leases WHERE plane_id = %s AND lease_id <> ALL(%s)"
_GC_LEASES = """DELETE FROM instance_leases WHERE plane_id IN
  (SELECT plane_id FROM control_planes WHERE expires_ms <= %s)"""
_GC_PLANES = "DELETE FROM control_planes WHERE expires_ms <= %s"
_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_ACQUIRE = """INSERT INTO instance_leases (lease_id, function_id, plane_id, since_ms)
  SELECT %(lease)s, %(fn)s, %(plane)s, %(now)s::bigint
  WHERE (SELECT count(*) FROM instance_leases l JOIN control_planes p USING (plane_id)
         WHERE l.function_id = %(fn)s AND p.expires_ms > %(now)s::bigint) < %(max)s"""
_RELEASE = "DELETE FROM instance_leases WHERE lease_id = %s"
_DROP = (
    "DELETE FROM instance_leases WHERE plane_id = %s",
    "DELETE FROM control_planes WHERE plane_id = %s",
)
_PLANES = """SELECT p.plane_id, p.started_ms, p.expires_ms, p.gateway_url, p.admin_url,
    l.function_id, count(l.lease_id)
  FROM control_planes p LEFT JOIN instance_leases l USING (plane_id)
  WHERE p.expires_ms > %s
  GROUP BY p.plane_id, l.function_id ORDER BY p.started_ms, p.plane_id, l.function_id"""

Conn = psycopg.AsyncConnection[Any]


async def heartbeat(
    conn: Conn, plane: ControlPlane, lease_ids: Mapping[str, str], now_ms: int
) -> bool:
    """See `PlaneStore.heartbeat_plane`."""
    cur = await conn.execute(_EXTEND, (plane.expires_ms, plane.plane_id))
    found = cur.rowcount == 1
    async with conn.transaction(), conn.cursor() as cur:
        if not found:
            await cur.execute(
                _INSERT_PLANE,
                (
                    plane.plane_id,
                    plane.started_ms,
                    plane.expires_ms,
                    plane.gateway_url,
                    plane.admin_url,
                ),
            )
            rows = [(lid, fid, plane.plane_id, now_ms) for lid, fid in lease_ids.items()]
            if rows:
                await cur.executemany(_INSERT_LEASE, rows)
        await cur.execute(_FORGET, (plane.plane_id, list(lease_ids)))
        await cur.execute(_GC_LEASES, (now_ms,))
        await cur.execute(_GC_PLANES, (now_ms,))
    return found


async def acquire(
    conn: Conn,
    schema: str,
    plane_id: str,
    function_id: str,
    lease_id: str,
    max_instances: int,
    now_ms: int,
) -> bool:
    """See `PlaneStore.acquire_instance_lease`; `schema` scopes the advisory lock."""
    params = {
        "lease": lease_id,
        "fn": function_id,
        "plane": plane_id,
        "now": now_ms,
        "max": max_instances,
    }
    async with conn.transaction():
        await conn.execute(_LOCK, (_lock_id(schema, function_id),))
        cur = await conn.execute(_ACQUIRE, params)
        return cur.rowcount == 1


async def release(conn: Conn, lease_id: str) -> None:
    await conn.execute(_RELEASE, (lease_id,))


async def drop(conn: Conn, plane_id: str) -> None:
    async with conn.transaction():
        for statement in _DROP:
            await conn.execute(statement, (plane_id,))


async def control_planes(conn: Conn, now_ms: int) -> list[tuple[ControlPlane, dict[str, int]]]:
    cur = await conn.execute(_PLANES, (now_ms,))
    planes: dict[str, tuple[ControlPlane, dict[str, int]]] = {}
    for plane_id, started, expires, gateway, admin, function_id, count in await cur.fetchall():
        if plane_id not in planes:
            planes[plane_id] = (ControlPlane(plane_id, started, expires, gateway, admin), {})
        if function_id is not None:
            planes[plane_id][1][function_id] = int(count)
    return list(planes.values())


def _lock_id(schema: str, function_id: str) -> int:
    """The advisory lock serializing lease counts of one function (signed 64-bit)."""
    name = f"lamina.lease:{schema}:{function_id}"
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
