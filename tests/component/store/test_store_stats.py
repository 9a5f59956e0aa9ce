"""`invocation_stats` on both backends: invocations counted per function, per time bucket and
per duration bin, with errors, throttles and cold starts, inside the window only."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lamina.store import Store
from lamina.store.types import InvocationRecord, StatsRow

NOW = 1_700_000_000_000  # a multiple of 10 s and of 20 s
BOUNDS = (1.0, 10.0, 100.0)


def _record(n: int, start_ms: int, **changes: Any) -> InvocationRecord:
    base = InvocationRecord(
        request_id=f"req-{n}",
        function_id="svc.a",
        trigger="http",
        start_ms=start_ms,
        duration_ms=5.0,
        billed_ms=5,
        init_ms=None,
        cold=False,
        memory_mb=128,
        max_memory_mb=None,
        status="ok",
    )
    return replace(base, **changes)


async def test_invocations_are_counted_per_function_bucket_and_duration_bin(store: Store) -> None:
    await store.add_invocations(
        [
            _record(1, NOW + 1, duration_ms=0.5, cold=True, init_ms=40.0),
            _record(2, NOW + 2_000, duration_ms=5.0),
            _record(3, NOW + 9_999, duration_ms=5.0, status="error", error_type="ValueError"),
            _record(4, NOW + 10_000, duration_ms=1.0),  # on a bound: the lower bin
            _record(5, NOW + 12_000, duration_ms=0.0, status="throttled"),
            _record(6, NOW + 15_000, duration_ms=250.0, status="timeout", function_id="svc.b"),
            _record(7, NOW - 1, duration_ms=5.0),  # before the window
            _record(8, NOW + 20_000, duration_ms=5.0),  # at its end: outside
        ]
    )

    rows = await store.invocation_stats(
        since_ms=NOW, until_ms=NOW + 20_000, step_ms=10_000, bounds_ms=BOUNDS
    )

    assert sorted(rows, key=lambda r: (r.function_id, r.bucket_ms, r.bin)) == [
        StatsRow("svc.a", NOW, 0, requests=1, errors=0, throttles=0, cold_starts=1),
        StatsRow("svc.a", NOW, 1, requests=2, errors=1, throttles=0, cold_starts=0),
        StatsRow("svc.a", NOW + 10_000, -1, requests=1, errors=0, throttles=1, cold_starts=0),
        StatsRow("svc.a", NOW + 10_000, 0, requests=1, errors=0, throttles=0, cold_starts=0),
        StatsRow("svc.b", NOW + 10_000, 3, requests=1, errors=1, throttles=0, cold_starts=0),
    ]


async def test_stats_filter_by_function_and_an_empty_window_has_no_rows(store: Store) -> None:
    await store.add_invocations(
        [_record(1, NOW + 5), _record(2, NOW + 6, function_id="svc.b", duration_ms=50.0)]
    )

    only_b = await store.invocation_stats(
        since_ms=NOW, until_ms=NOW + 20_000, step_ms=20_000, bounds_ms=BOUNDS, function_id="svc.b"
    )
    empty = await store.invocation_stats(
        since_ms=NOW + 60_000, until_ms=NOW + 120_000, step_ms=1_000, bounds_ms=BOUNDS
    )

    assert only_b == [StatsRow("svc.b", NOW, 2, requests=1, errors=0, throttles=0, cold_starts=0)]
    assert empty == []
