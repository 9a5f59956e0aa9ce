"""All functions' pools behind one `invoke(function_id, ...)`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Iterable
from typing import Any

from lamina.clock import Clock, SystemClock
from lamina.errors import FunctionNotFound, ShuttingDown
from lamina.executor import ExecutorBackend, InvocationRequest
from lamina.invoker.capacity import Capacity
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
        capacity: Capacity | None = None,  # shared max_instances (several control planes)
    ) -> None:
        self._clock = clock or SystemClock()
        self.backend = backend
        self._recorder = recorder
        self._capacity = capacity
        self._revisions = itertools.count(1)  # hot reloads: each new pool's code revision
        self.pools = {
            p.fn.id: FunctionPool(p, backend, self._clock, recorder, capacity) for p in pools
        }

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
        pool = self.pool(function_id, request.request_id)
        try:
            return await pool.invoke(request)
        except ShuttingDown:
            current = self.pools.get(function_id)
            if current is None or current is pool:
                raise
            return await current.invoke(request)  # the pool was replaced by a hot reload

    # -- hot reload: a new pool per code revision ----------------------------------------------
    async def start_pool(self, config: PoolConfig, *, prewarm: bool = True) -> FunctionPool:
        """Start a pool for `config` under a new code revision (its own zygote), with one warm
        instance when `prewarm`, without routing anything to it yet. Raises InitError (or
        PlatformError) when the code cannot load; nothing of the new pool is left running."""
        fn = dataclasses.replace(config.fn, revision=next(self._revisions))
        pool = FunctionPool(
            dataclasses.replace(config, fn=fn),
            self.backend,
            self._clock,
            self._recorder,
            self._capacity,
        )
        old = self.pools.get(fn.id)
        if old is not None:
            pool.stats = old.stats  # the function's counters carry on across reloads
        try:
            await pool.start()
            if prewarm:
                await pool.prewarm()
        except BaseException:
            await pool.close()
            self.backend.release(pool.fn)
            raise
        return pool

    def switch(self, pool: FunctionPool) -> FunctionPool | None:
        """Send the function's invocations to `pool` from now on; returns the pool it replaces,
        which still finishes what it has accepted (see `retire`)."""
        old = self.pools.get(pool.fn.id)
        self.pools[pool.fn.id] = pool
        return old

    def remove(self, function_id: str) -> FunctionPool | None:
        """Stop routing to the function (it is no longer declared); returns its pool to retire."""
        return self.pools.pop(function_id, None)

    async def retire(self, pool: FunctionPool, timeout_s: float) -> None:
        """Let `pool` finish its in-flight and queued invocations (up to `timeout_s`), then stop
        its instances and free its zygote."""
        try:
            await asyncio.wait_for(pool.drain(), timeout_s)
        except TimeoutError:
            log.warning(
                "retired pool still busy at its deadline",
                extra={"function_id": pool.fn.id, "in_flight": pool.in_flight},
            )
        await pool.close()
        self.backend.release(pool.fn)

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
