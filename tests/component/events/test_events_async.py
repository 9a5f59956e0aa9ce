"""Async invocations on the shared consumer, on a real store with a fake clock: short leases
bring a dead platform's events back within seconds, with the same request id."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from fakes import FakeFunctions, FunctionError, advance, eventually

from lamina.clock import FakeClock
from lamina.events import AsyncInvoker, AsyncTarget
from lamina.events.async_invoke import ASYNC_LEASE_S
from lamina.store import Store

pytestmark = pytest.mark.timeout(20)

FN = "svc.fn"
TARGET = AsyncTarget(
    function_id=FN,
    timeout_s=900,  # a long timeout no longer means a long lease
    wait_s=10,
    capacity=4,
    max_retries=2,
    backoff_s=1,
    max_event_age_s=3600,
)


async def test_a_dead_platform_s_event_comes_back_after_the_short_lease_with_its_id(
    new_store: Callable[[], Awaitable[Store]], functions: FakeFunctions, clock: FakeClock
) -> None:
    async def hang(event: Any) -> Any:
        await clock.sleep(3600)

    functions.handlers[FN] = hang
    first = AsyncInvoker(await new_store(), functions.invoke, {FN: TARGET}, clock)
    first.start()
    event_id = await first.submit(FN, b'{"n": 1}', request_id="req-1")
    await eventually(lambda: len(functions.calls) == 1, "the first attempt")
    await first.stop(0)  # the platform "dies" mid-invocation: no ack, no release

    functions.handlers[FN] = lambda event: {"ok": True}
    second = AsyncInvoker(await new_store(), functions.invoke, {FN: TARGET}, clock)
    second.start()
    try:
        await advance(clock, second, seconds=ASYNC_LEASE_S)
        await eventually(lambda: second.delivered == 1, "the event to be delivered again")
    finally:
        await second.stop(0)

    assert event_id == "req-1"
    assert functions.request_ids(FN) == ["req-1", "req-1"]
    assert orjson.loads(orjson.dumps(functions.calls[1][1].payload)) == {"n": 1}


class _LongestBackoff(random.Random):
    """Full jitter always drawing its upper bound, so the delays are known: 1 s, then 2 s."""

    def randint(self, a: int, b: int) -> int:
        return b


async def test_failed_attempts_are_retried_after_exponential_backoff_then_dead_lettered(
    new_store: Callable[[], Awaitable[Store]], functions: FakeFunctions, clock: FakeClock
) -> None:
    def fail(event: Any) -> Any:
        raise FunctionError("ValueError", "still broken")

    functions.handlers[FN] = fail
    store = await new_store()
    invoker = AsyncInvoker(store, functions.invoke, {FN: TARGET}, clock, rng=_LongestBackoff())
    invoker.start()
    try:
        await invoker.submit(FN, b'{"n": 1}', request_id="req-9")
        await eventually(lambda: len(functions.calls) == 1, "the first attempt")
        # Consumers look for events that became due once per poll interval (1 s here), so a
        # retry runs between its backoff and its backoff plus one poll interval.
        await advance(clock, invoker, seconds=0.999)
        assert len(functions.calls) == 1, "the first retry waits the base backoff (1 s)"
        await advance(clock, invoker, seconds=1.0)  # t = 1.999
        assert len(functions.calls) == 2, "the first retry ran at t = 1 s"
        await advance(clock, invoker, seconds=1.0)  # t = 2.999: 1.999 s after the 2nd failure
        assert len(functions.calls) == 2, "the second retry waits twice as long (2 s)"
        await advance(clock, invoker, seconds=1.0)  # t = 3.999
        await eventually(lambda: invoker.dead_lettered == 1, "the dead letter after 3 attempts")
        (dead,) = await store.peek("dlq:async:svc.fn")
    finally:
        await invoker.stop(0)
    assert functions.request_ids(FN) == ["req-9"] * 3
    assert dead.receive_count == 3
    assert dead.last_error is not None and dead.last_error["errorMessage"] == "still broken"


async def test_an_event_older_than_max_event_age_is_dead_lettered_without_an_attempt(
    new_store: Callable[[], Awaitable[Store]], functions: FakeFunctions, clock: FakeClock
) -> None:
    store = await new_store()
    young = AsyncTarget(FN, 900, 10, 4, max_retries=2, backoff_s=1, max_event_age_s=60)
    first = AsyncInvoker(store, functions.invoke, {FN: young}, clock)
    await first.submit(FN, b"{}", request_id="old")  # accepted, never started: platform down
    clock.advance(61)
    second = AsyncInvoker(store, functions.invoke, {FN: young}, clock)
    second.start()
    try:
        await eventually(lambda: second.dead_lettered == 1, "the too-old event dead-lettered")
        (dead,) = await store.peek("dlq:async:svc.fn")
    finally:
        await second.stop(0)
    assert functions.calls == []
    assert dead.last_error is not None and dead.last_error["errorType"] == "EventAgeExceeded"
