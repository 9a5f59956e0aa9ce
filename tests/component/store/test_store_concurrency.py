"""Concurrent claimers on both backends: two store objects on one database never hand out the
same message, and together they hand out every message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from itertools import chain

from lamina.store import NewMessage, Store

NOW = 1_700_000_000_000


async def _drain(store: Store, queue: str) -> list[str]:
    got: list[str] = []
    while batch := await store.claim(queue, max_messages=7, lease_ms=600_000, now_ms=NOW):
        got.extend(m.id for m in batch)
    return got


async def test_concurrent_claimers_never_share_a_message(
    new_store: Callable[[], Awaitable[Store]],
) -> None:
    one, two = await new_store(), await new_store()
    ids = await one.enqueue([NewMessage("work", b"%d" % i) for i in range(500)], now_ms=NOW)

    claimed = await asyncio.gather(*(_drain(s, "work") for s in (one, two) for _ in range(4)))

    everything = list(chain.from_iterable(claimed))
    assert len(everything) == len(set(everything)) == 500
    assert set(everything) == set(ids)


async def test_concurrent_claim_and_ack_empties_the_queue(
    new_store: Callable[[], Awaitable[Store]],
) -> None:
    one, two = await new_store(), await new_store()
    await one.enqueue([NewMessage("work", b"x") for _ in range(100)], now_ms=NOW)

    async def consume(store: Store) -> int:
        done = 0
        while batch := await store.claim("work", max_messages=3, lease_ms=600_000, now_ms=NOW):
            for m in batch:
                assert m.lease_token is not None
                assert await store.ack("work", m.id, m.lease_token)
                done += 1
        return done

    counts = await asyncio.gather(*(consume(s) for s in (one, two, one, two)))

    assert sum(counts) == 100
    [stats] = await one.stats(["work"])
    assert stats.depth == 0
