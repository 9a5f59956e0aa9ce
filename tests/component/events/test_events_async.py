"""Async invocations on the shared consumer, on a real store with a fake clock: short leases
bring a dead platform's events back within seconds, with the same request id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from fakes import FakeFunctions, advance, eventually

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
