"""All functions' pools behind one `invoke(function_id, ...)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from lamina.clock import Clock, SystemClock
from lamina.errors import FunctionNotFound
from lamina.executor import ExecutorBackend, InvocationRequest
from lamina.invoker.pool import FunctionPool, InvocationOutcome, PoolConfig
from lamina.telemetry.recorder import Recorder

__all__ = ["Invoker"]

log = logging.getLogger(__name__)


class Invoker:
    """Owns one `FunctionPool` per function."""

    def __init__(
        self,
        pools: Iterable[PoolConfig],
        backend: ExecutorBackend,
        clock: Clock | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self.backend = backend
        self.pools = {p.fn.id: FunctionPool(p, backend, self._clock, recorder) for p in pools}

    async def start(self) -> None:
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

    def pool(self, function_id: str, request_id: str = "") -> FunctionPool:
        pool = self.pools.get(function_id)
        if pool is None:
            raise FunctionNotFound(
                f"Function not found: {function_id}", function_id=function_id, request_id=request_id
            )
        return pool

    async def invoke(self, function_id: str, request: InvocationRequest) -> InvocationOutcome:
        return await self.pool(function_id, request.request_id).invoke(request)

    async def drain(self, timeout_s: float) -> bool:
        """Stop accepting; wait up to `timeout_s` for in-flight work. True if all finished."""
        try:
            await asyncio.wait_for(
                asyncio.gather(*(p.drain() for p in self.pools.values())), timeout_s
            )
            return True
        except TimeoutError:
            left = sum(p.in_flight + p.queued for p in self.pools.values())
            log.warning("drain deadline passed", extra={"in_flight": left})
            return False

    async def close(self) -> None:
        for pool in self.pools.values():
            with contextlib.suppress(Exception):
                await pool.close()

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "id": fid,
                "instances": pool.live,
                "busy": pool.busy,
                "starting": pool.starting,
                "queued": pool.queued,
                "in_flight": pool.in_flight,
                "cold_starts": pool.stats.cold_starts,
                "invocations": pool.stats.invocations,
                "throttles": pool.stats.throttles,
                "errors": pool.stats.errors,
                "min_instances": pool.config.scaling.min_instances,
                "max_instances": pool.config.scaling.max_instances,
            }
            for fid, pool in self.pools.items()
        ]
