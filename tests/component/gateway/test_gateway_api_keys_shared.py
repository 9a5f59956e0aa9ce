"""API keys of two platform processes sharing one store (SQLite file, PostgreSQL schema): a
key made or revoked by one holds on the other after a refresh, and a daily quota counts the
requests both accepted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from lamina.clock import FakeClock
from lamina.gateway.apikeys import ApiKeys
from lamina.gateway.jwtauth import AuthDenied
from lamina.store import Store


async def _planes(store: Store, new_store: Callable[[], Awaitable[Store]]) -> list[ApiKeys]:
    clock = FakeClock()
    planes = [ApiKeys(store, clock), ApiKeys(await new_store(), clock)]
    for plane in planes:
        await plane.start(refresh=False)
    return planes


async def test_a_key_made_and_revoked_on_one_process_holds_on_the_other_after_a_refresh(
    store: Store, new_store: Callable[[], Awaitable[Store]]
) -> None:
    a, b = await _planes(store, new_store)
    key, raw = await a.create("ci")
    with pytest.raises(AuthDenied):
        b.check(raw)  # not refreshed yet

    await b.refresh()
    assert b.check(raw).id == key.id
    assert await b.revoke(key.id)
    await a.refresh()
    with pytest.raises(AuthDenied) as denied:
        a.check(raw)
    assert denied.value.status == 403


async def test_a_daily_quota_counts_the_requests_of_both_processes(
    store: Store, new_store: Callable[[], Awaitable[Store]]
) -> None:
    a, b = await _planes(store, new_store)
    _, raw = await a.create("ci", quota_per_day=10)
    await b.refresh()
    for _ in range(6):
        a.check(raw)
    for _ in range(4):
        b.check(raw)

    for plane in (a, b, a):  # a's first refresh precedes b's flush: a sees b's 4 next time
        await plane.refresh()
    for plane in (a, b):
        with pytest.raises(AuthDenied) as over:
            plane.check(raw)
        assert (over.value.status, over.value.error_type) == (429, "QuotaExceeded")
