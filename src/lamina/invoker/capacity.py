"""Global `max_instances` when several control planes share one PostgreSQL store.

Each plane holds one lease row per live instance and counts every unexpired plane's leases
before it starts another, in one transaction under a per-function advisory lock
(`lamina.store._planes`). Leases are taken when an instance starts and given back when its
process exits, so the invocation hot path never touches them. A plane proves it is alive
with a heartbeat every `ttl_s / 3`; a plane whose heartbeat is `ttl_s` old (killed, machine
lost, cut off from the database) no longer counts, so its share comes back to the others
within `ttl_s` without anyone cleaning up.

Caveats: a plane cut off from the database for longer than `ttl_s` keeps running its
instances while the others may start theirs, so the function can briefly run more than
`max_instances` (the plane takes its leases again, over the limit, when it reconnects, and
starts no more until enough have stopped). Planes' wall clocks must agree to well within
`ttl_s` (NTP), as they do for schedule ticks. With one plane (SQLite) none of this runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Protocol

from lamina.clock import Clock
from lamina.errors import LaminaError, PlatformError
from lamina.store.types import ControlPlane, PlaneStore

__all__ = ["Capacity", "SharedCapacity"]

log = logging.getLogger(__name__)


class Capacity(Protocol):
    """Where a pool asks for room to start an instance beyond its own count."""

    async def acquire(self, function_id: str, max_instances: int) -> str | None:
        """A lease id for one more instance, or None when `max_instances` live elsewhere
        already; raises PlatformError when it cannot tell."""
        ...

    def release(self, lease_id: str) -> None:
        """Give a lease back (its instance is gone); never blocks, never raises."""
        ...


class SharedCapacity:
    """`Capacity` for planes sharing a `PlaneStore`: `await start()`, `await stop()`."""

    def __init__(
        self,
        store: PlaneStore,
        clock: Clock,
        *,
        gateway_url: str,
        admin_url: str,
        ttl_s: float = 15.0,  # a plane without a heartbeat this long is gone, > 0
    ) -> None:
        self._store = store
        self._clock = clock
        self.ttl_s = ttl_s
        self.plane_id = uuid.uuid4().hex
        self._urls = (gateway_url, admin_url)
        self._started_ms = 0
        self._registered = False  # its row was written: stop deletes it
        self._held: dict[str, str] = {}  # lease id -> function id, pending acquires included
        self._task: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()
        self.beats = 0  # heartbeats written (tests wait on it)
        self.planes: list[dict[str, Any]] = []  # as of the last heartbeat, for /status

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    def _plane(self) -> ControlPlane:
        expires = self._now_ms() + int(self.ttl_s * 1000)
        return ControlPlane(self.plane_id, self._started_ms, expires, *self._urls)

    async def start(self) -> None:
        """Register this plane (raises StoreError if the store cannot), then keep it alive."""
        self._started_ms = self._now_ms()
        await self._store.heartbeat_plane(self._plane(), {}, now_ms=self._started_ms)
        self._registered = True
        await self._read_planes()
        self._task = asyncio.get_running_loop().create_task(self._beat_loop())
        log.info("control plane registered", extra={"plane_id": self.plane_id})

    async def stop(self) -> None:
        """Stop the heartbeat and delete this plane and its leases (best effort: if the store
        is down they expire after `ttl_s`)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.gather(*self._releases, return_exceptions=True)
        self._held.clear()
        if not self._registered:
            return
        self._registered = False
        try:
            await self._store.drop_plane(self.plane_id)
        except LaminaError as exc:
            log.warning("control plane not unregistered", extra={"error": str(exc)})

    async def acquire(self, function_id: str, max_instances: int) -> str | None:
        lease_id = uuid.uuid4().hex
        self._held[lease_id] = function_id  # before the insert: a heartbeat must not drop it
        try:
            won = await self._store.acquire_instance_lease(
                self.plane_id,
                function_id,
                lease_id,
                max_instances=max_instances,
                now_ms=self._now_ms(),
            )
        except BaseException as exc:
            self._held.pop(lease_id, None)
            if isinstance(exc, LaminaError) and not isinstance(exc, PlatformError):
                raise PlatformError(f"cannot take an instance lease: {exc}") from exc
            raise
        if not won:
            self._held.pop(lease_id, None)
            return None
        return lease_id

    def release(self, lease_id: str) -> None:
        if self._held.pop(lease_id, None) is None:
            return
        task = asyncio.get_running_loop().create_task(self._release(lease_id))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release(self, lease_id: str) -> None:
        try:
            await self._store.release_instance_lease(lease_id)
        except LaminaError as exc:  # the next heartbeat drops it
            log.warning("instance lease not released yet", extra={"error": str(exc)})

    async def beat(self) -> None:
        """One heartbeat: extend this plane, re-sync its leases, drop expired planes."""
        found = await self._store.heartbeat_plane(
            self._plane(), dict(self._held), now_ms=self._now_ms()
        )
        await self._read_planes()
        self.beats += 1
        if not found:
            log.warning(
                "control plane was presumed gone; its instance leases are taken again",
                extra={"plane_id": self.plane_id, "leases": len(self._held)},
            )

    async def _read_planes(self) -> None:
        planes = await self._store.control_planes(now_ms=self._now_ms())
        self.planes = [
            {
                "id": plane.plane_id,
                "gateway": plane.gateway_url,
                "admin": plane.admin_url,
                "self": plane.plane_id == self.plane_id,
                "instances": leases,
            }
            for plane, leases in planes
        ]

    async def _beat_loop(self) -> None:
        failing = False
        while True:
            await self._clock.sleep(self.ttl_s / 3)
            try:
                await self.beat()
            except LaminaError as exc:
                if not failing:
                    log.warning("control plane heartbeat failed", extra={"error": str(exc)})
                failing = True
                continue
            if failing:
                log.info("control plane heartbeat resumed", extra={"plane_id": self.plane_id})
            failing = False
