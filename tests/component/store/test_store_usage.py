"""`usage` on both backends: what metering reads from the invocation records. Requests and
billed MB-ms per function, throttles left out, the window's bounds, and the peak concurrency
(overlaps counted, back-to-back invocations not)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from lamina.errors import StoreError
from lamina.store import Store
from lamina.store.types import FunctionUsage, InvocationRecord

NOW = 1_700_000_000_000


def _run(n: int, start: int, duration_ms: float, **changes: Any) -> InvocationRecord:
    """An invocation of svc.fn (256 MB) starting `start` ms after NOW."""
    base = InvocationRecord(
        request_id=f"req-{n}",
        function_id="svc.fn",
        trigger="http",
        start_ms=NOW + start,
        duration_ms=duration_ms,
        billed_ms=max(1, math.ceil(duration_ms)),  # as the invoker bills
        init_ms=None,
        cold=False,
        memory_mb=256,
        max_memory_mb=None,
        status="ok",
    )
    return replace(base, **changes)


async def _usage(store: Store, **changes: Any) -> list[FunctionUsage]:
    window: dict[str, Any] = {"since_ms": NOW, "until_ms": NOW + 60_000, **changes}
    return await store.usage(**window)


async def test_requests_and_billed_mb_ms_are_summed_per_function(store: Store) -> None:
    await store.add_invocations(
        [
            _run(1, 0, 99.2),  # billed 100 ms x 256 MB
            _run(2, 1000, 0.4, status="error"),  # errors are billed: 1 ms x 256 MB
            _run(3, 2000, 1500.0, status="timeout"),  # and timeouts: 1500 ms x 256 MB
            _run(4, 0, 10.0, function_id="other.fn", memory_mb=1024),  # 10 ms x 1024 MB
            _run(5, 50, 10.0, function_id="other.fn", memory_mb=512),  # 10 ms x 512 MB
        ]
    )

    assert await _usage(store) == [
        FunctionUsage("other.fn", 2, 10 * 1024 + 10 * 512, 1024, 1),
        FunctionUsage("svc.fn", 3, (100 + 1 + 1500) * 256, 256, 1),
    ]


async def test_throttled_invocations_are_neither_requests_nor_billed_nor_concurrent(
    store: Store,
) -> None:
    await store.add_invocations(
        [
            _run(1, 0, 100.0),
            # A throttle is recorded with duration 0 and billed 0; make it look busy anyway to
            # show that its status alone excludes it.
            _run(2, 10, 50.0, status="throttled"),
            _run(3, 20, 0.0, billed_ms=0, status="throttled", function_id="only.throttled"),
        ]
    )

    assert await _usage(store) == [FunctionUsage("svc.fn", 1, 100 * 256, 256, 1)]


async def test_only_invocations_that_started_inside_the_window_count(store: Store) -> None:
    await store.add_invocations(
        [
            _run(1, -1, 500.0),  # started 1 ms before the window, ran into it: not counted
            _run(2, 0, 1.0),  # at since_ms: counted
            _run(3, 59_999, 1.0),  # the last millisecond: counted
            _run(4, 60_000, 1.0),  # at until_ms: not counted
        ]
    )

    [usage] = await _usage(store)

    assert usage.requests == 2
    assert await _usage(store, since_ms=NOW + 60_000, until_ms=NOW + 120_000) == [
        FunctionUsage("svc.fn", 1, 256, 256, 1)
    ]
    assert await _usage(store, since_ms=NOW - 10, until_ms=NOW - 1) == []


async def test_the_function_filter_keeps_one_function(store: Store) -> None:
    await store.add_invocations(
        [_run(1, 0, 5.0), _run(2, 0, 5.0, function_id="other.fn"), _run(3, 1, 5.0)]
    )

    assert await _usage(store, function_id="svc.fn") == [
        FunctionUsage("svc.fn", 2, 10 * 256, 256, 2)
    ]
    assert await _usage(store, function_id="nope.fn") == []


@pytest.mark.parametrize(
    ("intervals", "peak"),
    [
        pytest.param([(0, 10), (20, 10), (40, 10)], 1, id="one at a time: peak 1"),
        pytest.param([(0, 10), (10, 10), (20, 10)], 1, id="back to back (end == next start): 1"),
        pytest.param([(0, 10), (5, 10), (10, 10)], 2, id="[0,10) [5,15) [10,20): peak 2"),
        pytest.param([(0, 100), (10, 10), (30, 10), (50, 60)], 2, id="nested, apart: 2"),
        pytest.param([(0, 100), (10, 80), (20, 60), (30, 5)], 4, id="four nested: 4"),
        pytest.param([(0, 10)] * 5, 5, id="five starting in the same ms: 5"),
        pytest.param([(0, 10.9), (10, 5)], 1, id="ends are floored: 10.9 ms from 0 ends at 10"),
        pytest.param([(0, 11.0), (10, 5)], 2, id="11 ms from 0 overlaps one starting at 10"),
        pytest.param([(0, 0.3), (0, 0.2)], 1, id="sub-millisecond runs still count as 1"),
    ],
)
async def test_peak_concurrency_is_the_most_invocations_running_at_once(
    store: Store, intervals: list[tuple[int, float]], peak: int
) -> None:
    records = [_run(n, start, duration) for n, (start, duration) in enumerate(intervals)]
    # Another function running at the same times must not add to this one's peak.
    records += [_run(100 + n, start, 50.0, function_id="x.y") for n, start in enumerate((0, 5))]
    await store.add_invocations(records)

    usage = {u.function_id: u for u in await _usage(store)}

    assert usage["svc.fn"].peak_concurrency == peak
    assert usage["x.y"].peak_concurrency == 2


async def test_ten_thousand_records_are_aggregated_by_the_database(store: Store) -> None:
    # 100 waves of 100 invocations: wave w starts at w*1000 ms, invocation i of a wave starts
    # i ms later and runs 50 ms, so at most 50 of a wave overlap (i ends where i+50 starts).
    records = [
        _run(w * 100 + i, w * 1000 + i, 50.0, billed_ms=50) for w in range(100) for i in range(100)
    ]
    await store.add_invocations(records)

    assert await _usage(store, until_ms=NOW + 200_000) == [
        FunctionUsage("svc.fn", 10_000, 10_000 * 50 * 256, 256, 50)
    ]


async def test_usage_sees_what_other_store_objects_wrote_and_needs_an_open_store(
    store: Store, new_store: Callable[[], Awaitable[Store]]
) -> None:
    # SQLite reads usage on a connection of its own: it sees every committed batch.
    other = await new_store()
    await store.add_invocations([_run(1, 0, 5.0)])
    assert [u.requests for u in await _usage(other)] == [1]
    await other.add_invocations([_run(2, 10, 5.0)])
    assert [u.requests for u in await _usage(store)] == [2]

    await other.close()

    with pytest.raises(StoreError, match="not open"):
        await _usage(other)
