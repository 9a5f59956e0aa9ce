"""Queue triggers on a real store (SQLite and PostgreSQL) with a fake clock and fake functions:
batching and the batch window, partial batch failures, visibility timeouts, dead letters, and
what `send` refuses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from fakes import FakeFunctions, FunctionError, Stoppable, advance, eventually

from lamina.clock import FakeClock
from lamina.errors import FunctionTimeout, InvalidMessage, PayloadTooLarge, QueueNotFound
from lamina.events import Queues, QueueTarget
from lamina.store import Store

pytestmark = pytest.mark.timeout(20)

FN = "svc.worker"
Start = Callable[[Stoppable], Stoppable]


def _queues(store: Store, functions: FakeFunctions, clock: FakeClock, **settings: Any) -> Queues:
    target = QueueTarget(queue="jobs", function_id=FN, **settings)
    return Queues(store, functions.invoke, clock, [target], names=["other"])


def _bodies(event: Any) -> list[str]:
    return [record["body"] for record in event["Records"]]


async def test_a_batch_is_an_sqs_event_and_success_deletes_every_message(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    queues = _queues(store, functions, clock, batch_size=10)
    ids = [await queues.send("jobs", f"m{i}", attributes={"n": i, "k": "v"}) for i in range(3)]
    started(queues)

    await eventually(lambda: queues.delivered == 3, "the batch to be acknowledged")

    (event,) = functions.events(FN)
    assert _bodies(event) == ["m0", "m1", "m2"]
    record = event["Records"][0]
    assert record["messageId"] == ids[0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:000000000000:jobs"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SentTimestamp"] == str(int(clock.wall() * 1000))
    assert record["messageAttributes"]["n"]["dataType"] == "Number"
    assert record["messageAttributes"]["k"]["stringValue"] == "v"
    assert await store.peek("queue:jobs") == []


async def test_more_messages_than_batch_size_make_several_batches(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    queues = _queues(store, functions, clock, batch_size=2)
    for i in range(5):
        await queues.send("jobs", f"m{i}")
    started(queues)

    await eventually(lambda: queues.delivered == 5, "every message to be acknowledged")

    assert sorted(len(e["Records"]) for e in functions.events(FN)) == [1, 2, 2]


async def test_a_partial_batch_waits_for_the_batch_window_then_goes(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    queues = _queues(store, functions, clock, batch_size=3, batch_window_s=2.0)
    started(queues)
    await queues.send("jobs", "first")
    await eventually(lambda: queues.consumer.held("queue:jobs") == 1, "the first to be leased")
    await queues.send("jobs", "second")
    await eventually(lambda: queues.consumer.held("queue:jobs") == 2, "the second to join")

    await advance(clock, queues, seconds=1.9)
    assert queues.consumer.held("queue:jobs") == 2
    assert functions.calls == [], "the window is still open and the batch is not full"
    await advance(clock, queues, seconds=0.1)
    await eventually(lambda: queues.delivered == 2, "the batch to go when the window ends")

    (event,) = functions.events(FN)
    assert _bodies(event) == ["first", "second"]


async def test_a_batch_that_fills_up_goes_before_its_window_ends(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    queues = _queues(store, functions, clock, batch_size=2, batch_window_s=60.0)
    started(queues)
    await queues.send("jobs", "a")
    await eventually(lambda: queues.consumer.held("queue:jobs") == 1, "the first to be leased")
    await queues.send("jobs", "b")

    await eventually(lambda: queues.delivered == 2, "the full batch to go at once")

    assert [_bodies(e) for e in functions.events(FN)] == [["a", "b"]]


async def test_batch_item_failures_redeliver_only_those_after_the_visibility_timeout(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    def handler(event: Any) -> Any:
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"
            ]
        }

    functions.handlers[FN] = handler
    queues = _queues(store, functions, clock, batch_size=10, visibility_timeout_s=30.0)
    ids = {body: await queues.send("jobs", body) for body in ("ok1", "bad", "ok2")}
    started(queues)
    await eventually(lambda: queues.delivered == 2 and queues.failed == 1, "the first batch")

    [left] = await store.peek("queue:jobs")
    assert left.id == ids["bad"] and left.last_error is not None
    assert left.last_error["errorType"] == "BatchItemFailure"
    await advance(clock, queues, seconds=29.9)
    assert len(functions.calls) == 1, "no redelivery inside the visibility timeout"
    # Visible again at 30 s; the consumer finds it at its next poll (poll_s is 1 s).
    await advance(clock, queues, seconds=1.0)
    await eventually(lambda: len(functions.calls) == 2, "the failed message to come back")

    first, second = functions.events(FN)
    assert [r["messageId"] for r in second["Records"]] == [ids["bad"]]
    assert second["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert second["Records"][0]["receiptHandle"] != first["Records"][1]["receiptHandle"]
    first_id, second_id = functions.request_ids(FN)
    assert first_id != second_id, "every batch invocation has its own request id"


async def test_an_unknown_item_identifier_fails_the_whole_batch(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    functions.handlers[FN] = lambda event: {"batchItemFailures": [{"itemIdentifier": "nope"}]}
    queues = _queues(store, functions, clock, batch_size=10)
    for body in ("a", "b"):
        await queues.send("jobs", body)
    started(queues)

    await eventually(lambda: queues.failed == 2, "both to be released")

    assert queues.delivered == 0
    assert len(await store.peek("queue:jobs")) == 2


async def test_a_failing_batch_is_dead_lettered_after_max_receive_count(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    def handler(event: Any) -> Any:
        raise FunctionError("KeyError", "no such job")

    functions.handlers[FN] = handler
    queues = _queues(store, functions, clock, visibility_timeout_s=5.0, max_receive_count=2)
    ids = [await queues.send("jobs", body) for body in ("a", "b")]
    started(queues)
    await eventually(lambda: queues.failed == 2, "the first receive to fail")
    await advance(clock, queues, seconds=5.0)

    await eventually(lambda: queues.dead_lettered == 2, "both to be dead-lettered")

    assert len(functions.calls) == 2, "received max_receive_count times, no more"
    assert await store.peek("queue:jobs") == []
    dead = await store.peek("dlq:queue:jobs")
    assert sorted(m.id for m in dead) == sorted(ids)
    assert {m.receive_count for m in dead} == {2}
    assert dead[0].last_error is not None
    assert (dead[0].last_error["errorType"], dead[0].last_error["errorMessage"]) == (
        "KeyError",
        "no such job",
    )


async def test_a_timeout_releases_the_whole_batch(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    def handler(event: Any) -> Any:
        raise FunctionTimeout(function_id=FN, request_id="r", timeout_s=3)

    functions.handlers[FN] = handler
    queues = _queues(store, functions, clock, visibility_timeout_s=5.0)
    for body in ("a", "b"):
        await queues.send("jobs", body)
    started(queues)

    await eventually(lambda: queues.failed == 2, "the batch to be released")

    errors = [m.last_error for m in await store.peek("queue:jobs")]
    assert [e["errorType"] if e else None for e in errors] == ["Sandbox.Timedout"] * 2


async def test_a_crashed_consumer_s_messages_come_back_after_the_visibility_timeout(
    new_store: Any, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    async def hang(event: Any) -> Any:
        await clock.sleep(3600)

    functions.handlers[FN] = hang
    first = _queues(await new_store(), functions, clock, visibility_timeout_s=10.0)
    [mid] = [await first.send("jobs", "job")]
    first.start()
    await eventually(lambda: len(functions.calls) == 1, "the first delivery")
    await first.stop(0)  # the "crash": no ack, no release
    functions.handlers[FN] = lambda event: None
    store = await new_store()
    second = _queues(store, functions, clock, visibility_timeout_s=10.0)
    started(second)

    await advance(clock, second, seconds=9.0)
    held = await store.get("queue:jobs", mid)
    assert held is not None and held.visible_ms > int(clock.wall() * 1000)
    assert len(functions.calls) == 1
    await advance(clock, second, seconds=1.0)
    await eventually(lambda: len(functions.calls) == 2, "the redelivery")

    event = functions.events(FN)[1]
    assert event["Records"][0]["messageId"] == mid
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    await eventually(lambda: second.delivered == 1, "the ack")


async def test_the_heartbeat_keeps_a_long_delivery_s_lease(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    finish = asyncio.Event()

    async def slow(event: Any) -> Any:
        await finish.wait()

    functions.handlers[FN] = slow
    queues = _queues(store, functions, clock, visibility_timeout_s=3.0)
    [mid] = [await queues.send("jobs", "slow")]
    started(queues)
    await eventually(lambda: len(functions.calls) == 1, "the delivery to start")

    for _ in range(30):  # 30 s, ten visibility timeouts, in steps of a third of one
        clock.advance(1.0)
        now_ms = int(clock.wall() * 1000)

        async def extended(now_ms: int = now_ms) -> bool:
            held = await store.get("queue:jobs", mid)
            return held is not None and held.visible_ms == now_ms + 3000

        await eventually(extended, "the heartbeat to extend the lease")
    assert await store.claim("queue:jobs", max_messages=1, lease_ms=1, now_ms=now_ms) == []

    finish.set()
    await eventually(lambda: queues.delivered == 1, "the ack")
    assert len(functions.calls) == 1, "never delivered twice"


async def test_send_refuses_unknown_queues_large_bodies_and_bad_attributes(
    store: Store, functions: FakeFunctions, clock: FakeClock
) -> None:
    queues = _queues(store, functions, clock)

    with pytest.raises(QueueNotFound) as unknown:
        await queues.send("jbos", "x")
    assert "'jbos'" in str(unknown.value) and "'jobs', 'other'" in str(unknown.value)
    with pytest.raises(PayloadTooLarge) as large:
        await queues.send("jobs", "é" * (512 * 1024 + 1))
    assert "1048578 bytes; the limit is 1048576 bytes" in str(large.value)
    with pytest.raises(InvalidMessage, match="attribute 'flag': expected str"):
        await queues.send("jobs", "x", attributes={"flag": True})
    with pytest.raises(InvalidMessage, match="delay: expected 0-900 seconds"):
        await queues.send("jobs", "x", delay_s=901)
    assert await store.peek("queue:jobs") == []

    await queues.send("jobs", "x" * (1024 * 1024))  # exactly the limit is fine
    [kept] = await store.peek("queue:jobs")
    assert json.loads(b'"' + kept.body[:3] + b'"') == "xxx"


async def test_a_delayed_message_is_delivered_when_its_delay_ends(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    queues = _queues(store, functions, clock)
    started(queues)
    await queues.send("jobs", "later", delay_s=5)

    await advance(clock, queues, seconds=4.0)
    assert functions.calls == []
    await advance(clock, queues, seconds=1.0)
    await eventually(lambda: queues.delivered == 1, "the delayed message")
