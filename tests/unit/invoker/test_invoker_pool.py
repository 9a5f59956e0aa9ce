"""The pool over stand-in instances that end invocations when the test says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lamina.clock import FakeClock
from lamina.errors import FunctionCrashed
from lamina.executor import FunctionConfig, Instance, InvocationRequest, InvocationResult
from lamina.invoker import FunctionPool, PoolConfig
from lamina.scaling import ScalingSpec


class StandIn:
    """An instance whose invocations end when `end()` is called."""

    pid = 0
    init_ms = 1.0
    node = None
    serial = False

    def __init__(self, iid: str) -> None:
        self.iid = iid
        self.function_id = "svc.fn"
        self.alive = True
        self.sent: list[tuple[InvocationRequest, asyncio.Future[InvocationResult]]] = []

    async def invoke(self, request: InvocationRequest) -> InvocationResult:
        if not self.alive:
            raise FunctionCrashed("instance is not running", function_id=self.function_id)
        ended: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
        self.sent.append((request, ended))
        return await ended

    def end(self) -> None:
        request, ended = self.sent.pop(0)
        ended.set_result(InvocationResult(True, {"for": request.request_id}))

    async def stop(self, grace_s: float = 2.0) -> None:
        self.alive = False


class Backend:
    def __init__(self) -> None:
        self.instances: list[StandIn] = []
        self.on_exit: Callable[[Instance], None] | None = None

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def prepare(self, fn: FunctionConfig) -> None: ...

    async def start_instance(
        self, fn: FunctionConfig, on_exit: Callable[[Instance], None]
    ) -> StandIn:
        instance = StandIn(f"i{len(self.instances) + 1}")
        self.instances.append(instance)
        self.on_exit = on_exit
        return instance

    def release(self, fn: FunctionConfig) -> None: ...


async def _pool(backend: Backend, warm: int, max_instances: int = 2) -> FunctionPool:
    fn = FunctionConfig("svc.fn", "fn.handler", "/tmp", 128, 3.0, 1)
    config = PoolConfig(fn, ScalingSpec(0, max_instances, 1, 600.0), 10, 5.0)
    pool = FunctionPool(config, backend, FakeClock())  # type: ignore[arg-type]
    await pool.start()
    for _ in range(warm):
        await pool.prewarm()
    return pool


async def test_an_instance_that_died_idle_is_not_sent_to() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=2)
    older, newer = backend.instances
    newer.alive = False  # died while idle (the most recently used); its exit not handled yet
    call = asyncio.ensure_future(pool.invoke(InvocationRequest("r1", {})))
    await asyncio.sleep(0)
    assert (newer.sent, [r.request_id for r, _ in older.sent]) == ([], ["r1"])
    older.end()
    assert (await call).instance_id == older.iid
    await pool.close()


async def test_a_drain_waits_for_every_invocation_handed_out() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=1)
    call = asyncio.ensure_future(pool.invoke(InvocationRequest("r1", {})))
    await asyncio.sleep(0)
    draining = asyncio.ensure_future(pool.drain())
    await asyncio.sleep(0)
    assert not draining.done()
    backend.instances[0].end()
    await call
    await asyncio.wait_for(draining, 1.0)
    await pool.close()
