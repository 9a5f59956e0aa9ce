"""Schedule ticks on both backends: each tick is claimed exactly once, across store objects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from lamina.store import Store

TICK = 1_700_000_060_000  # epoch ms of one schedule tick


async def test_a_tick_is_claimed_once_among_concurrent_callers(store: Store) -> None:
    results = await asyncio.gather(
        *(store.claim_tick("shop.report", TICK, owner=f"worker-{i}") for i in range(20))
    )

    assert sorted(results) == [False] * 19 + [True]


async def test_a_tick_is_claimed_once_across_two_stores(
    new_store: Callable[[], Awaitable[Store]],
) -> None:
    one, two = await new_store(), await new_store()

    for tick in (TICK, TICK + 60_000, TICK + 120_000):
        results = await asyncio.gather(
            *(
                (one if i % 2 else two).claim_tick("shop.report", tick, owner=f"p{i % 2}-{i}")
                for i in range(20)
            )
        )
        assert results.count(True) == 1, tick


async def test_ticks_are_per_schedule_and_last_tick_resumes(store: Store) -> None:
    assert await store.last_tick("a") is None

    assert await store.claim_tick("a", TICK, owner="p1")
    assert await store.claim_tick("b", TICK, owner="p1")
    assert await store.claim_tick("a", TICK + 60_000, owner="p2")
    assert not await store.claim_tick("a", TICK, owner="p2")

    assert await store.last_tick("a") == TICK + 60_000
    assert await store.last_tick("b") == TICK
