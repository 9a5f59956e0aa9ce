"""API keys and their daily usage on both backends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from lamina.store import Store
from lamina.store.types import ApiKey


def key(n: int, **over: object) -> ApiKey:
    fields: dict[str, object] = {
        "id": f"key_{n}",
        "name": f"client {n}",
        "key_hash": f"{n:064x}",
        "rate": 5.0,
        "burst": 10,
        "quota_per_day": 1000,
        "created_ms": 1000 + n,
    }
    fields.update(over)
    return ApiKey(**fields)  # type: ignore[arg-type]


async def test_keys_are_listed_oldest_first_and_revoked_once(store: Store) -> None:
    await store.add_api_key(key(2))
    await store.add_api_key(key(1, rate=None, burst=None, quota_per_day=None))
    assert await store.api_keys() == [
        key(1, rate=None, burst=None, quota_per_day=None),
        key(2),
    ]
    assert await store.revoke_api_key("key_2", now_ms=5000) is True
    assert await store.revoke_api_key("key_2", now_ms=6000) is False
    assert await store.revoke_api_key("key_404", now_ms=6000) is False
    assert (await store.api_keys())[1].revoked_ms == 5000


async def test_usage_adds_up_per_key_and_day_across_stores(
    store: Store, new_store: Callable[[], Awaitable[Store]]
) -> None:
    other = await new_store()
    await store.add_api_key_usage("2026-11-29", {"key_1": 3, "key_2": 1})
    await other.add_api_key_usage("2026-11-29", {"key_1": 4, "key_3": 0})
    await store.add_api_key_usage("2026-11-30", {"key_1": 9})
    assert await store.api_key_usage("2026-11-29") == {"key_1": 7, "key_2": 1}
    assert await other.api_key_usage("2026-11-30") == {"key_1": 9}
    assert await store.api_key_usage("2026-12-01") == {}
