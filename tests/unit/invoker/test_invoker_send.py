"""The warm path without a Task: `FunctionPool.try_send` hands an invocation to a free instance
and is told its end by a callback. Instances here are stand-ins that end invocations when the
test says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from lamina.clock import FakeClock
from lamina.errors import FunctionCrashed, ShuttingDown
from lamina.executor import (
    Done,
    FunctionConfig,
    Instance,
    InvocationRequest,
    InvocationResult,
    NotStarted,
)
from lamina.invoker import FunctionPool, InvocationOutcome, PoolConfig
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
        self.refuse = False
        self.sent: list[tuple[InvocationRequest, Done]] = []

    def send(self, request: InvocationRequest, done: Done) -> None:
        if not self.alive or self.refuse:
            raise FunctionCrashed("instance is not running", function_id=self.function_id)
        self.sent.append((request, done))

    async def invoke(self, request: InvocationRequest) -> InvocationResult:
        ended: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()

        def done(result: InvocationResult | None, error: BaseException | None) -> None:
            if error is not None:
                ended.set_exception(error)
            else:
                ended.set_result(result)  # type: ignore[arg-type]

        self.send(request, done)
        return await ended

    def end(self, value: object = "ok", error: BaseException | None = None) -> None:
        request, done = self.sent.pop(0)
        done(None if error else InvocationResult(True, {"for": request.request_id}), error)

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


Ends = list[tuple[InvocationOutcome | None, BaseException | None]]


async def _pool(backend: Backend, warm: int, max_instances: int = 2) -> FunctionPool:
    fn = FunctionConfig("svc.fn", "fn.handler", "/tmp", 128, 3.0, 1)
    config = PoolConfig(fn, ScalingSpec(0, max_instances, 1, 600.0), 10, 5.0)
    pool = FunctionPool(config, backend, FakeClock())  # type: ignore[arg-type]
    await pool.start()
    for _ in range(warm):
        await pool.prewarm()
    return pool


def _collect(ends: Ends) -> Callable[[InvocationOutcome | None, BaseException | None], None]:
    return lambda outcome, error: ends.append((outcome, error))


async def test_a_free_instance_takes_the_invocation_at_once_and_its_end_is_told() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=1)
    ends: Ends = []
    assert pool.try_send(InvocationRequest("r1", {}), _collect(ends))
    [instance] = backend.instances
    [(request, _)] = instance.sent
    assert request.traceparent is not None, "the invocation's own span goes to the instance"
    assert (pool.busy, ends) == (1, [])
    instance.end()
    [(outcome, error)] = ends
    assert error is None and outcome is not None
    assert (outcome.result.value, outcome.instance_id) == ({"for": "r1"}, "i1")
    assert (pool.busy, pool.stats.invocations) == (0, 1)
    await pool.close()


async def test_an_invocation_that_would_wait_is_left_to_invoke() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=1, max_instances=1)
    assert pool.try_send(InvocationRequest("r1", {}), _collect([]))
    assert not pool.try_send(InvocationRequest("r2", {}), _collect([]))
    assert (pool.busy, pool.queued, pool.stats.invocations) == (1, 0, 1)  # nothing done
    waiting = asyncio.ensure_future(pool.invoke(InvocationRequest("r2", {})))
    await asyncio.sleep(0)
    backend.instances[0].end()  # r1 ends: r2 gets the instance
    await asyncio.sleep(0)
    backend.instances[0].end()
    assert (await waiting).result.value == {"for": "r2"}
    await pool.close()


async def test_a_failure_reaches_the_callback_and_counts_as_an_error() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=1)
    ends: Ends = []
    pool.try_send(InvocationRequest("r1", {}), _collect(ends))
    crash = FunctionCrashed("RequestId: r1 Error: Runtime exited", function_id="svc.fn")
    backend.instances[0].end(error=crash)
    assert ends == [(None, crash)]
    assert (pool.busy, pool.stats.errors) == (0, 1)
    await pool.close()


async def test_an_invocation_its_instance_never_started_runs_on_another() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=2)
    first, second = backend.instances
    ends: Ends = []
    assert pool.try_send(InvocationRequest("r1", {}), _collect(ends))
    taker, other = (first, second) if first.sent else (second, first)
    taker.alive = False  # it died, as LocalInstance tells it: the failure, then the exit
    taker.end(error=NotStarted("r1"))
    assert backend.on_exit is not None
    backend.on_exit(taker)  # type: ignore[arg-type]
    for _ in range(5):
        await asyncio.sleep(0)
    assert ends == [] and [r.request_id for r, _ in other.sent] == ["r1"]
    other.end()
    for _ in range(5):  # the retry runs in a Task
        await asyncio.sleep(0)
    [(outcome, error)] = ends
    assert error is None and outcome is not None and outcome.instance_id == other.iid
    assert pool.stats.invocations == 1, "counted once"
    await pool.close()


async def test_an_instance_that_died_idle_is_not_sent_to() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=2)
    newer, older = backend.instances[1], backend.instances[0]
    newer.alive = False  # died while idle; its exit is not handled yet
    assert pool.try_send(InvocationRequest("r1", {}), _collect([]))
    assert (newer.sent, [r.request_id for r, _ in older.sent]) == ([], ["r1"])
    older.alive = False
    assert pool.try_send(InvocationRequest("r2", {}), _collect([])) is None, "left to invoke"
    await pool.close()


async def test_a_send_that_fails_tells_the_failure_on_a_later_turn() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=1)
    backend.instances[0].refuse = True
    ends: Ends = []
    assert pool.try_send(InvocationRequest("r1", {}), _collect(ends))
    assert ends == [], "not from inside try_send"
    await asyncio.sleep(0)
    [(outcome, error)] = ends
    assert outcome is None and isinstance(error, FunctionCrashed)
    assert (pool.busy, pool.stats.errors) == (0, 1)
    await pool.close()


async def test_an_invocation_given_up_on_is_cancelled_at_once_and_its_end_ignored() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=1)
    ends: Ends = []
    give_up = pool.try_send(InvocationRequest("r1", {}), _collect(ends))
    assert give_up is not None
    give_up(None, asyncio.CancelledError())
    [(outcome, error)] = ends
    assert outcome is None and isinstance(error, asyncio.CancelledError)
    assert pool.busy == 0
    await asyncio.wait_for(pool.drain(), 1.0)  # a drain does not wait for it
    backend.instances[0].end()  # the instance finishes it after all
    assert len(ends) == 1
    await pool.close()


async def test_a_retry_cut_short_by_the_pool_closing_is_told_the_pool_stopped() -> None:
    backend = Backend()
    pool = await _pool(backend, warm=1)
    ends: Ends = []
    pool.try_send(InvocationRequest("r1", {}), _collect(ends))
    backend.instances[0].end(error=NotStarted("r1"))  # to be retried, in a Task
    await pool.close()
    for _ in range(3):
        await asyncio.sleep(0)
    [(outcome, error)] = ends
    assert outcome is None and isinstance(error, ShuttingDown)


@pytest.mark.parametrize("closing", ["drain", "close"])
async def test_a_pool_that_is_stopping_takes_nothing_this_way(closing: str) -> None:
    backend = Backend()
    pool = await _pool(backend, warm=1)
    if closing == "drain":
        draining = asyncio.ensure_future(pool.drain())
        await asyncio.sleep(0)
    else:
        await pool.close()
    assert not pool.try_send(InvocationRequest("r1", {}), _collect([]))
    assert backend.instances[0].sent == []
    if closing == "drain":
        await draining
        await pool.close()
