"""Queue operations on both backends: enqueue, claim with leases, ack, release, move, listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.errors import DuplicateMessage, StoreError
from lamina.store import NewMessage, Store, open_store

NOW = 1_700_000_000_000  # epoch ms; tests move time by hand


async def test_enqueue_claim_ack_round_trip(store: Store) -> None:
    [mid] = await store.enqueue([NewMessage("q", b'{"n": 1}', {"source": "test"})], now_ms=NOW)

    [msg] = await store.claim("q", max_messages=10, lease_ms=30_000, now_ms=NOW)

    assert (msg.id, msg.queue, msg.body, dict(msg.attributes)) == (
        mid,
        "q",
        b'{"n": 1}',
        {"source": "test"},
    )
    assert (msg.created_ms, msg.receive_count, msg.first_received_ms) == (NOW, 1, NOW)
    assert msg.visible_ms == NOW + 30_000
    assert msg.lease_token and msg.last_error is None
    assert await store.ack("q", mid, msg.lease_token) is True
    assert await store.get("q", mid) is None
    assert await store.claim("q", max_messages=10, lease_ms=1, now_ms=NOW + 60_000) == []


async def test_enqueue_keeps_given_ids_assigns_the_others_and_keeps_order(store: Store) -> None:
    ids = await store.enqueue(
        [NewMessage("q", b"a", message_id="first"), NewMessage("q", b"b"), NewMessage("q", b"c")],
        now_ms=NOW,
    )

    assert ids[0] == "first" and len(set(ids)) == 3
    claimed = await store.claim("q", max_messages=10, lease_ms=1000, now_ms=NOW)
    assert [m.id for m in claimed] == ids
    assert [m.body for m in claimed] == [b"a", b"b", b"c"]


async def test_claim_takes_at_most_max_messages_oldest_first(store: Store) -> None:
    ids = await store.enqueue([NewMessage("q", b"%d" % i) for i in range(5)], now_ms=NOW)
    await store.enqueue([NewMessage("other", b"x")], now_ms=NOW)

    first = await store.claim("q", max_messages=2, lease_ms=1000, now_ms=NOW)
    rest = await store.claim("q", max_messages=10, lease_ms=1000, now_ms=NOW)

    assert [m.id for m in first] == ids[:2]
    assert [m.id for m in rest] == ids[2:]
    assert await store.claim("q", max_messages=0, lease_ms=1000, now_ms=NOW) == []


async def test_claim_respects_delay(store: Store) -> None:
    [late] = await store.enqueue([NewMessage("q", b"late", delay_ms=5_000)], now_ms=NOW)
    [now] = await store.enqueue([NewMessage("q", b"now")], now_ms=NOW)

    assert [m.id for m in await store.claim("q", max_messages=10, lease_ms=60_000, now_ms=NOW)] == [
        now
    ]
    assert await store.claim("q", max_messages=10, lease_ms=60_000, now_ms=NOW + 4_999) == []
    [msg] = await store.claim("q", max_messages=10, lease_ms=60_000, now_ms=NOW + 5_000)
    assert msg.id == late


async def test_lease_expiry_makes_a_message_claimable_again(store: Store) -> None:
    [mid] = await store.enqueue([NewMessage("q", b"x")], now_ms=NOW)
    [first] = await store.claim("q", max_messages=1, lease_ms=1_000, now_ms=NOW)

    assert await store.claim("q", max_messages=1, lease_ms=1_000, now_ms=NOW + 999) == []
    [second] = await store.claim("q", max_messages=1, lease_ms=1_000, now_ms=NOW + 1_000)

    assert second.id == mid
    assert second.receive_count == 2
    assert second.lease_token != first.lease_token
    assert second.first_received_ms == NOW
    assert second.visible_ms == NOW + 2_000


async def test_a_stale_lease_token_cannot_ack_release_or_move(store: Store) -> None:
    [mid] = await store.enqueue([NewMessage("q", b"x")], now_ms=NOW)
    [old] = await store.claim("q", max_messages=1, lease_ms=10, now_ms=NOW)
    [new] = await store.claim("q", max_messages=1, lease_ms=10_000, now_ms=NOW + 10)
    assert old.lease_token is not None and new.lease_token is not None

    assert await store.ack("q", mid, old.lease_token) is False
    assert await store.release("q", mid, old.lease_token, delay_ms=0, now_ms=NOW + 20) is False
    assert await store.move("q", mid, old.lease_token, to_queue="dlq", now_ms=NOW + 20) is False
    assert await store.ack("q", "no-such-id", new.lease_token) is False
    assert await store.ack("other-queue", mid, new.lease_token) is False
    current = await store.get("q", mid)
    assert current is not None and current.lease_token == new.lease_token
    assert await store.ack("q", mid, new.lease_token) is True


async def test_an_expired_lease_that_nobody_took_can_still_ack(store: Store) -> None:
    [mid] = await store.enqueue([NewMessage("q", b"x")], now_ms=NOW)
    [msg] = await store.claim("q", max_messages=1, lease_ms=10, now_ms=NOW)
    assert msg.lease_token is not None

    assert await store.ack("q", mid, msg.lease_token) is True


async def test_release_with_delay_records_the_error(store: Store) -> None:
    [mid] = await store.enqueue([NewMessage("q", b"x")], now_ms=NOW)
    [msg] = await store.claim("q", max_messages=1, lease_ms=30_000, now_ms=NOW)
    assert msg.lease_token is not None
    error = {"errorType": "ValueError", "errorMessage": "boom"}

    assert await store.release(
        "q", mid, msg.lease_token, delay_ms=2_000, now_ms=NOW + 100, error=error
    )

    released = await store.get("q", mid)
    assert released is not None
    assert (released.lease_token, released.visible_ms, released.receive_count) == (
        None,
        NOW + 2_100,
        1,
    )
    assert released.last_error == error
    assert await store.ack("q", mid, msg.lease_token) is False
    assert await store.claim("q", max_messages=1, lease_ms=10, now_ms=NOW + 2_099) == []
    [again] = await store.claim("q", max_messages=1, lease_ms=10, now_ms=NOW + 2_100)
    assert again.receive_count == 2 and again.last_error == error
    assert again.lease_token is not None
    # A release without an error keeps the last one recorded.
    assert await store.release("q", mid, again.lease_token, delay_ms=0, now_ms=NOW + 3_000)
    kept = await store.get("q", mid)
    assert kept is not None and kept.last_error == error and kept.visible_ms == NOW + 3_000


async def test_move_to_a_dead_letter_queue_keeps_the_message(store: Store) -> None:
    [mid] = await store.enqueue([NewMessage("q", b"payload", {"k": [1, 2]})], now_ms=NOW)
    await store.claim("q", max_messages=1, lease_ms=10, now_ms=NOW)
    [msg] = await store.claim("q", max_messages=1, lease_ms=10_000, now_ms=NOW + 10)
    assert msg.lease_token is not None
    error = {"errorType": "Boom", "attempts": 2}

    moved = await store.move(
        "q", mid, msg.lease_token, to_queue="dlq:q", now_ms=NOW + 50, error=error
    )

    assert moved is True
    assert await store.get("q", mid) is None
    [dead] = await store.peek("dlq:q")
    assert (dead.id, dead.queue, dead.body, dict(dead.attributes)) == (
        mid,
        "dlq:q",
        b"payload",
        {"k": [1, 2]},
    )
    assert (dead.created_ms, dead.receive_count, dead.first_received_ms) == (NOW, 2, NOW)
    assert (dead.lease_token, dead.visible_ms, dead.last_error) == (None, NOW + 50, error)
    [redelivered] = await store.claim("dlq:q", max_messages=5, lease_ms=10, now_ms=NOW + 50)
    assert redelivered.id == mid and redelivered.receive_count == 3


async def test_one_id_may_live_in_several_queues_but_once_per_queue(store: Store) -> None:
    await store.enqueue(
        [
            NewMessage("sub:t:a", b"x", message_id="m1"),
            NewMessage("sub:t:b", b"x", message_id="m1"),
        ],
        now_ms=NOW,
    )

    with pytest.raises(DuplicateMessage) as info:
        await store.enqueue([NewMessage("sub:t:a", b"y", message_id="m1")], now_ms=NOW)
    assert (info.value.queue, info.value.message_id) == ("sub:t:a", "m1")
    assert "m1" in str(info.value) and "sub:t:a" in str(info.value)

    [msg] = await store.claim("sub:t:a", max_messages=1, lease_ms=10, now_ms=NOW)
    assert msg.lease_token is not None
    with pytest.raises(DuplicateMessage):
        await store.move("sub:t:a", "m1", msg.lease_token, to_queue="sub:t:b", now_ms=NOW)
    still = await store.get("sub:t:a", "m1")
    assert still is not None and still.lease_token == msg.lease_token


async def test_enqueue_is_all_or_nothing(store: Store) -> None:
    await store.enqueue([NewMessage("q", b"old", message_id="taken")], now_ms=NOW)

    with pytest.raises(DuplicateMessage) as info:
        await store.enqueue(
            [
                NewMessage("q", b"1", message_id="fresh-1"),
                NewMessage("q", b"2", message_id="taken"),
                NewMessage("q", b"3", message_id="fresh-2"),
            ],
            now_ms=NOW,
        )
    assert info.value.message_id == "taken"
    with pytest.raises(DuplicateMessage):
        await store.enqueue(
            [NewMessage("q", b"1", message_id="twice"), NewMessage("q", b"2", message_id="twice")],
            now_ms=NOW,
        )

    assert [m.id for m in await store.peek("q")] == ["taken"]
    assert await store.enqueue([], now_ms=NOW) == []


async def test_a_batch_enqueue_spans_queues(store: Store) -> None:
    batch = [NewMessage(f"q{i % 3}", b"%d" % i) for i in range(30)]

    ids = await store.enqueue(batch, now_ms=NOW)

    assert len(ids) == 30
    depths = {s.queue: s.depth for s in await store.stats(["q0", "q1", "q2"])}
    assert depths == {"q0": 10, "q1": 10, "q2": 10}


async def test_peek_get_delete_purge(store: Store) -> None:
    ids = await store.enqueue([NewMessage("q", b"%d" % i) for i in range(5)], now_ms=NOW)
    later = await store.enqueue([NewMessage("q", b"later")], now_ms=NOW + 1)
    [claimed] = await store.claim("q", max_messages=1, lease_ms=10_000, now_ms=NOW + 2)

    assert [m.id for m in await store.peek("q")] == [*ids, *later]
    assert [m.id for m in await store.peek("q", limit=2, offset=1)] == ids[1:3]
    peeked = await store.get("q", ids[0])
    assert peeked is not None and peeked.lease_token == claimed.lease_token
    assert await store.get("q", "missing") is None
    assert await store.get("other", ids[1]) is None

    assert await store.delete("q", ids[0]) is True  # even while leased
    assert await store.delete("q", ids[0]) is False
    assert await store.purge("q") == 5
    assert await store.purge("q") == 0
    assert await store.peek("q") == []


async def test_stats(store: Store) -> None:
    await store.enqueue([NewMessage("a", b"1"), NewMessage("a", b"2")], now_ms=NOW)
    await store.enqueue([NewMessage("a", b"3", delay_ms=1_000)], now_ms=NOW + 5)
    await store.enqueue([NewMessage("b", b"1")], now_ms=NOW + 10)
    await store.claim("a", max_messages=1, lease_ms=60_000, now_ms=NOW + 10)

    all_queues = await store.stats(now_ms=NOW + 10)
    named = await store.stats(["b", "empty", "a"], now_ms=NOW + 2_000)

    assert [(s.queue, s.depth, s.visible, s.oldest_created_ms) for s in all_queues] == [
        ("a", 3, 1, NOW),
        ("b", 1, 1, NOW + 10),
    ]
    assert [(s.queue, s.depth, s.visible, s.oldest_created_ms) for s in named] == [
        ("b", 1, 1, NOW + 10),
        ("empty", 0, 0, None),
        ("a", 3, 2, NOW),
    ]
    assert [s.queue for s in await store.stats()] == ["a", "b"]  # the wall clock's "now"


async def test_bodies_and_attributes_round_trip_exactly(store: Store) -> None:
    body = bytes(range(256)) * 4
    attributes = {"unicode": "héllo ✓", "nested": {"list": [1, 2.5, None, True]}, "empty": ""}

    [mid] = await store.enqueue([NewMessage("q", body, attributes)], now_ms=NOW)

    msg = await store.get("q", mid)
    assert msg is not None and msg.body == body and msg.attributes == attributes


async def test_calls_before_open_raise_a_store_error(store_url: str, tmp_path: Path) -> None:
    closed = open_store(store_url, default_dir=tmp_path)
    with pytest.raises(StoreError, match="not open"):
        await closed.claim("q", max_messages=1, lease_ms=1, now_ms=NOW)
    await closed.close()  # closing a store that never opened is harmless
