"""The pool over stand-in instances that end invocations when the test says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lamina.clock import FakeClock
from lamina.errors import FunctionCrashed
from lamina.executor import FunctionConfig, Instance, InvocationRequest, InvocationResult
from lamina.invoker import FunctionPool, PoolConfig
from lamina.invoker.pool import BATCH, BATCH_BUDGET_MS, SHORT_STREAK
from lamina.scaling import ScalingSpec


class StandIn:
    """An instance whose invocations end when `end()` is called."""

    pid = 0
    init_ms = 1.0
    node = None
    serial = False
    run_ms: float | None = None  # what it reports its handler ran for

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
        ended.set_result(InvocationResult(True, {"for": request.request_id}, run_ms=self.run_ms))

    async def stop(self, grace_s: float = 2.0) -> None:
        self.alive = False


class Backend:
    def __init__(self, kind: type[StandIn] = StandIn) -> None:
        self.kind = kind  # of the instances it starts
        self.instances: list[StandIn] = []
        self.on_exit: Callable[[Instance], None] | None = None

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def prepare(self, fn: FunctionConfig) -> None: ...

    async def start_instance(
        self, fn: FunctionConfig, on_exit: Callable[[Instance], None]
    ) -> StandIn:
        instance = self.kind(f"i{len(self.instances) + 1}")
        self.instances.append(instance)
        self.on_exit = on_exit
        return instance

    def release(self, fn: FunctionConfig) -> None: ...


async def _pool(
    backend: Backend, warm: int, max_instances: int = 2, max_queued: int = 10
) -> FunctionPool:
    fn = FunctionConfig("svc.fn", "fn.handler", "/tmp", 128, 3.0, 1)
    config = PoolConfig(fn, ScalingSpec(0, max_instances, 1, 600.0), max_queued, 5.0)
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


class SerialStandIn(StandIn):
    """A stand-in that runs what it is sent one at a time, in order, as a local instance of a
    synchronous handler does: the pool may send invocations behind the one it runs."""

    serial = True
    run_ms = 0.01


async def _short_streak(pool: FunctionPool, backend: Backend, count: int = SHORT_STREAK) -> None:
    """Run `count` invocations one at a time: on the pool's fake clock each took no time, so
    the function is short from then on."""
    for i in range(count):
        call = asyncio.ensure_future(pool.invoke(InvocationRequest(f"s{i}", {})))
        await asyncio.sleep(0)
        [busy] = [instance for instance in backend.instances if instance.sent]
        busy.end()
        await call


async def _batching_pool() -> tuple[Backend, FunctionPool]:
    """A pool of three serial stand-ins for a function known to be short, whose handler's
    recent runs have decayed to the stand-in's 0.01 ms: it batches up to BATCH."""
    backend = Backend(SerialStandIn)
    pool = await _pool(backend, warm=3, max_instances=3, max_queued=100)
    await _short_streak(pool, backend, count=100)
    return backend, pool


async def _one_turn(pool: FunctionPool, count: int) -> list[asyncio.Future[object]]:
    """Start `count` invocations that all reach the pool in one turn of the event loop."""
    calls: list[asyncio.Future[object]] = [
        asyncio.ensure_future(pool.invoke(InvocationRequest(f"r{i}", {}))) for i in range(count)
    ]
    await asyncio.sleep(0)
    return calls


async def _end_all(backend: Backend, calls: list[asyncio.Future[object]]) -> None:
    for instance in backend.instances:
        while instance.sent:
            instance.end()
            await asyncio.sleep(0)
    await asyncio.gather(*calls)


async def test_a_short_functions_invocations_of_one_turn_go_to_one_instance_up_to_a_batch() -> None:
    backend, pool = await _batching_pool()
    calls = await _one_turn(pool, BATCH + 2)
    sent = sorted((len(instance.sent) for instance in backend.instances), reverse=True)
    assert sent == [BATCH, 1, 1]  # one wake-up for BATCH of them; the rest to free instances
    [batched] = [i for i in backend.instances if len(i.sent) == BATCH]
    assert [r.request_id for r, _ in batched.sent] == [f"r{i}" for i in range(BATCH)]
    await _end_all(backend, calls)
    # The batch was of that turn only: the next turn's invocations start their own.
    calls = await _one_turn(pool, 2)
    assert sorted(len(instance.sent) for instance in backend.instances) == [0, 0, 2]
    await _end_all(backend, calls)
    await pool.close()


async def test_invocations_are_not_batched_before_the_function_is_known_to_be_short() -> None:
    backend = Backend(SerialStandIn)
    pool = await _pool(backend, warm=3, max_instances=3)
    calls = await _one_turn(pool, 3)
    assert [len(instance.sent) for instance in backend.instances] == [1, 1, 1]
    await _end_all(backend, calls)
    await pool.close()


async def test_invocations_are_not_batched_onto_an_instance_that_runs_several_at_once() -> None:
    backend = Backend()  # StandIn.serial is False: no order among what it is sent
    pool = await _pool(backend, warm=3, max_instances=3)
    await _short_streak(pool, backend)
    calls = await _one_turn(pool, 3)
    assert [len(instance.sent) for instance in backend.instances] == [1, 1, 1]
    await _end_all(backend, calls)
    await pool.close()


async def test_max_queued_bounds_a_batch_and_zero_turns_batching_off() -> None:
    for max_queued, expected in ((2, [3, 1, 1]), (0, [1, 1, 1])):
        backend = Backend(SerialStandIn)
        pool = await _pool(backend, warm=3, max_instances=3, max_queued=max_queued)
        await _short_streak(pool, backend)
        calls = await _one_turn(pool, sum(expected))
        assert sorted((len(i.sent) for i in backend.instances), reverse=True) == expected
        await _end_all(backend, calls)
        await pool.close()


async def test_a_batch_holds_no_more_than_the_budget_of_the_handlers_recent_longest_run() -> None:
    for run_ms, expected in ((0.5, [4, 1, 1]), (1.0, [2, 1, 1]), (1.5, [1, 1, 1])):
        backend = Backend(SerialStandIn)
        pool = await _pool(backend, warm=3, max_instances=3, max_queued=100)
        for instance in backend.instances:
            instance.run_ms = run_ms
        await _short_streak(pool, backend)  # the decaying maximum settles at `run_ms`
        calls = await _one_turn(pool, sum(expected))
        assert sorted((len(i.sent) for i in backend.instances), reverse=True) == expected, run_ms
        assert expected[0] == max(1, int(BATCH_BUDGET_MS / run_ms))
        await _end_all(backend, calls)
        await pool.close()


async def _one_run(pool: FunctionPool, backend: Backend, run_ms: float) -> None:
    """One invocation whose handler the instance reports ran for `run_ms` (the pool's fake
    clock times it at 0 ms, so the function stays short)."""
    for instance in backend.instances:
        instance.run_ms = run_ms
    await _short_streak(pool, backend, count=1)
    for instance in backend.instances:
        instance.run_ms = SerialStandIn.run_ms


async def test_one_long_run_among_short_ones_does_not_stop_batching() -> None:
    # A lone long run is most often the machine's (an instance preempted on busy cores).
    backend, pool = await _batching_pool()
    await _one_run(pool, backend, 25.0)
    calls = await _one_turn(pool, 3)
    assert sorted(len(i.sent) for i in backend.instances) == [0, 0, 3]
    await _end_all(backend, calls)
    await pool.close()


async def test_a_second_long_run_stops_batching_until_enough_short_ones_follow() -> None:
    backend, pool = await _batching_pool()
    await _one_run(pool, backend, 5.0)
    await _one_run(pool, backend, 5.0)
    calls = await _one_turn(pool, 3)
    assert [len(i.sent) for i in backend.instances] == [1, 1, 1]  # 5 ms: over the budget
    await _end_all(backend, calls)
    await _short_streak(pool, backend)  # 0.9 ** 33 of 5 ms is 0.15 ms: 12 fit in 2 ms
    calls = await _one_turn(pool, 3)
    assert sorted(len(i.sent) for i in backend.instances) == [0, 0, 3]
    await _end_all(backend, calls)
    await pool.close()
