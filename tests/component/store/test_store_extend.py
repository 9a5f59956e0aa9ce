"""Lease extension (delivery heartbeats) on both backends."""

from __future__ import annotations

from lamina.store import NewMessage, Store

NOW = 1_700_000_000_000  # epoch ms; tests move time by hand


async def test_extend_keeps_a_held_message_invisible_from_now_plus_the_lease(store: Store) -> None:
    [mid] = await store.enqueue([NewMessage("q", b"x")], now_ms=NOW)
    [msg] = await store.claim("q", max_messages=1, lease_ms=1_000, now_ms=NOW)
    assert msg.lease_token is not None

    assert await store.extend("q", mid, msg.lease_token, lease_ms=1_000, now_ms=NOW + 900)

    assert await store.claim("q", max_messages=1, lease_ms=1_000, now_ms=NOW + 1_899) == []
    held = await store.get("q", mid)
    assert held is not None
    assert (held.visible_ms, held.lease_token, held.receive_count) == (
        NOW + 1_900,
        msg.lease_token,
        1,
    )
    [again] = await store.claim("q", max_messages=1, lease_ms=1_000, now_ms=NOW + 1_900)
    assert again.receive_count == 2


async def test_extend_fails_once_the_lease_is_lost_or_settled(store: Store) -> None:
    [a, b] = await store.enqueue([NewMessage("q", b"a"), NewMessage("q", b"b")], now_ms=NOW)
    [first_a, first_b] = await store.claim("q", max_messages=2, lease_ms=10, now_ms=NOW)
    assert first_a.lease_token is not None and first_b.lease_token is not None
    # a: the lease lapsed and someone else claimed it; b: released (settled) by its holder.
    [second_a] = await store.claim("q", max_messages=1, lease_ms=10_000, now_ms=NOW + 10)
    assert second_a.id == a
    assert await store.release("q", b, first_b.lease_token, delay_ms=5_000, now_ms=NOW + 10)

    assert not await store.extend("q", a, first_a.lease_token, lease_ms=60_000, now_ms=NOW + 20)
    assert not await store.extend("q", b, first_b.lease_token, lease_ms=60_000, now_ms=NOW + 20)
    assert not await store.extend("q", "missing", "token", lease_ms=60_000, now_ms=NOW + 20)

    kept_a, kept_b = await store.get("q", a), await store.get("q", b)
    assert kept_a is not None and kept_a.visible_ms == NOW + 10_010
    assert kept_b is not None and kept_b.visible_ms == NOW + 5_010
