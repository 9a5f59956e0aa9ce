"""All functions' pools behind one `invoke(target, ...)`.

There is one pool per function version that can run: `users.signup` runs the code the
platform started with (`$LATEST`), `users.signup:7` deployed version 7. A target without a
version (`users.signup`, `users.signup:beta`) goes through the function's alias (`live` when
none is named); before the first deploy, `live` is `$LATEST` (see `invoker/aliases.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import random
from collections.abc import Iterable, Mapping
from typing import Any

from lamina.clock import Clock, SystemClock
from lamina.errors import FunctionNotFound, InvocationError, ShuttingDown, Throttled
from lamina.executor import ExecutorBackend, InvocationRequest
from lamina.invoker.aliases import LATEST, LIVE, AliasRoute, parse_target, pick_version
from lamina.invoker.capacity import Capacity
from lamina.invoker.pool import FunctionPool, InvocationOutcome, PoolConfig, pool_key
from lamina.telemetry.recorder import Recorder

__all__ = ["Invoker"]

log = logging.getLogger(__name__)


class Invoker:
    """Owns one `FunctionPool` per function version, by `pool.key`, and the aliases."""

    def __init__(
        self,
        pools: Iterable[PoolConfig],
        backend: ExecutorBackend,
        clock: Clock | None = None,
        recorder: Recorder | None = None,
        rng: random.Random | None = None,
        capacity: Capacity | None = None,  # shared max_instances (several control planes)
    ) -> None:
        self._clock = clock or SystemClock()
        self.backend = backend
        self._recorder = recorder
        self._capacity = capacity
        self._revisions = itertools.count(1)  # hot reloads: each new pool's code revision
        self.rng = rng or random.Random()  # canary splits draw from it; tests seed it
        self.pools: dict[str, FunctionPool] = {}
        for config in pools:
            self.add(FunctionPool(config, backend, self._clock, recorder, capacity))
        self.aliases: dict[str, dict[str, AliasRoute]] = {}  # function id -> alias -> route

    def add(self, pool: FunctionPool) -> None:
        """Add a pool that is not started yet (`start()` starts it with the others)."""
        self.pools[pool.key] = pool

    def reset(self, pools: Iterable[PoolConfig]) -> None:
        """Before `start()`: run these pools instead of those given so far (a restarted
        platform runs the versions its aliases point at)."""
        self.pools = {}
        for config in pools:
            if config.fn.version != LATEST:  # each version forks from a zygote of its own
                fn = dataclasses.replace(config.fn, revision=next(self._revisions))
                config = dataclasses.replace(config, fn=fn)
            self.add(
                FunctionPool(config, self.backend, self._clock, self._recorder, self._capacity)
            )

    async def start(self) -> None:
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

    def set_aliases(self, function_id: str, aliases: Mapping[str, AliasRoute]) -> None:
        """Route the function's aliases as given from the next invocation on."""
        if aliases:
            self.aliases[function_id] = dict(aliases)
        else:
            self.aliases.pop(function_id, None)

    def pool(self, target: str, request_id: str = "") -> FunctionPool:
        """The pool that runs the next invocation of `target` (`id`, `id:alias`, `id:7`,
        `id:$LATEST`); an alias with a canary draws its version here."""
        function_id, qualifier = parse_target(target)
        if qualifier == LATEST:
            key = function_id
        elif qualifier.isdecimal():
            key = pool_key(function_id, str(int(qualifier)))
        else:
            route = self.aliases.get(function_id, {}).get(qualifier)
            if route is not None:
                key = pool_key(function_id, str(pick_version(route, self.rng.random())))
            elif qualifier == LIVE:
                key = function_id  # nothing deployed yet: the code the platform started with
            else:
                raise FunctionNotFound(
                    f"Function not found: {function_id} has no alias {qualifier!r}",
                    function_id=function_id,
                    request_id=request_id,
                )
        pool = self.pools.get(key)
        if pool is None:
            raise FunctionNotFound(
                f"Function not found: {target}"
                + (" (no alias points at this version)" if qualifier.isdecimal() else ""),
                function_id=function_id,
                request_id=request_id,
            )
        return pool

    def knows(self, target: str) -> bool:
        """Whether `target` names something that can run now (without drawing a canary)."""
        function_id, qualifier = parse_target(target)
        route = self.aliases.get(function_id, {}).get(qualifier)
        if route is not None:
            return all(pool_key(function_id, str(v)) in self.pools for v in route.versions())
        if qualifier.isdecimal():
            return pool_key(function_id, str(int(qualifier))) in self.pools
        return qualifier in (LIVE, LATEST) and function_id in self.pools

    async def invoke(self, function_id: str, request: InvocationRequest) -> InvocationOutcome:
        """Run one invocation of `function_id`, a target as `pool()` takes it."""
        # Without aliases (no deploys), a target is its pool's key: skip parsing it.
        pool = None if self.aliases else self.pools.get(function_id)
        if pool is None:
            pool = self.pool(function_id, request.request_id)
        while True:
            try:
                return await pool.invoke(request)
            except Throttled:
                raise
            except InvocationError as exc:
                # A failure that ran the code names the version that ran it, as a result does
                # (the Invoke API's `X-Amz-Executed-Version`).
                exc.version = pool.fn.version
                raise
            except ShuttingDown:
                # The pool was replaced (a hot reload) or retired (its alias moved) after it
                # was picked: the invocation goes where the target leads now.
                try:
                    current = self.pool(function_id, request.request_id)
                except FunctionNotFound:
                    raise ShuttingDown("the function's instances are stopping") from None
                if current is pool:
                    raise
                pool = current

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
        old = self.pools.get(pool.key)
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
        """Send the invocations of `pool.key` to `pool` from now on; returns the pool it
        replaces, which still finishes what it has accepted (see `retire`)."""
        old = self.pools.get(pool.key)
        self.pools[pool.key] = pool
        return old

    def remove(self, key: str) -> FunctionPool | None:
        """Stop routing to a pool (a function no longer declared: its id; a version no alias
        points at: `id:N`); returns the pool to retire."""
        return self.pools.pop(key, None)

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

    def by_function(self) -> dict[str, list[FunctionPool]]:
        """Every function's pools (one per running version), by function id."""
        grouped: dict[str, list[FunctionPool]] = {}
        for pool in self.pools.values():
            grouped.setdefault(pool.fn.id, []).append(pool)
        return grouped

    def status(self) -> list[dict[str, Any]]:
        """One row per function, its versions' instances and counters added up; `versions`
        breaks them down when a deploy made any; with instances on Ray nodes, `placement`
        says where each runs."""
        rows = []
        for fid, pools in self.by_function().items():
            row: dict[str, Any] = {"id": fid, **_counts(pools)}
            last = pools[-1]
            row["min_instances"] = last.config.scaling.min_instances
            row["max_instances"] = last.config.scaling.max_instances
            if any(p.fn.version != LATEST for p in pools):
                row["versions"] = [{"version": p.fn.version, **_counts([p])} for p in pools]
            placed = [where for p in pools for where in p.placement()]
            if placed:
                row["placement"] = placed
            rows.append(row)
        return rows


def _counts(pools: list[FunctionPool]) -> dict[str, int]:
    return {
        "instances": sum(p.live for p in pools),
        "busy": sum(p.busy for p in pools),
        "starting": sum(p.starting for p in pools),
        "queued": sum(p.queued for p in pools),
        "queued_behind": sum(p.queued_behind for p in pools),
        "in_flight": sum(p.in_flight for p in pools),
        "cold_starts": sum(p.stats.cold_starts for p in pools),
        "invocations": sum(p.stats.invocations for p in pools),
        "throttles": sum(p.stats.throttles for p in pools),
        "errors": sum(p.stats.errors for p in pools),
    }
