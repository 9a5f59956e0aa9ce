"""Topics on a real store (SQLite and PostgreSQL) with a fake clock and fake functions: fan-out
in one transaction filtered by subscription policies, SNS-shaped events, retries per
subscription, dead letters, and what `publish` refuses."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from fakes import FakeFunctions, FunctionError, Stoppable, advance, eventually

from lamina.clock import FakeClock
from lamina.errors import InvalidMessage, PayloadTooLarge, TopicNotFound
from lamina.events import AsyncTarget, Subscription, Topics
from lamina.store import Store

pytestmark = pytest.mark.timeout(20)

Start = Callable[[Stoppable], Stoppable]


def _target(function_id: str, *, max_retries: int = 2, backoff_s: float = 1.0) -> AsyncTarget:
    return AsyncTarget(
        function_id=function_id,
        timeout_s=3,
        wait_s=10,
        capacity=2,
        max_retries=max_retries,
        backoff_s=backoff_s,
        max_event_age_s=3600,
    )


def _topics(
    store: Store, functions: FakeFunctions, clock: FakeClock, *subs: Subscription
) -> Topics:
    return Topics(
        store,
        functions.invoke,
        clock,
        subs,
        rng=random.Random(7),
        base_url="http://127.0.0.1:9001",
    )


async def test_a_message_fans_out_to_every_matching_subscription_as_an_sns_event(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    topics = _topics(
        store,
        functions,
        clock,
        Subscription("orders", _target("svc.all")),
        Subscription(
            "orders", _target("svc.red"), {"color": ["red"], "size": [{"numeric": [">", 2]}]}
        ),
        Subscription("orders", _target("svc.blue"), {"color": ["blue"]}),
    )

    message_id = await topics.publish(
        "orders", '{"id": 1}', subject="new", attributes={"color": "red", "size": 3}
    )

    # Filtered at publish time, stored in one transaction: nothing for the blue subscriber.
    assert [m.id for m in await store.peek("sub:orders:svc.blue")] == []
    assert len(await store.peek("sub:orders:svc.all")) == 1
    assert len(await store.peek("sub:orders:svc.red")) == 1
    started(topics)
    await eventually(lambda: topics.delivered == 2, "both deliveries to be acknowledged")

    assert functions.events("svc.blue") == []
    [to_all] = functions.events("svc.all")
    [to_red] = functions.events("svc.red")
    for event in (to_all, to_red):
        (record,) = event["Records"]
        sns = record["Sns"]
        assert record["EventSource"] == "aws:sns"
        assert sns["MessageId"] == message_id
        assert sns["TopicArn"] == "arn:aws:sns:us-east-1:000000000000:orders"
        assert (sns["Message"], sns["Subject"]) == ('{"id": 1}', "new")
        assert sns["MessageAttributes"] == {
            "color": {"Type": "String", "Value": "red"},
            "size": {"Type": "Number", "Value": "3"},
        }
        assert sns["UnsubscribeUrl"].startswith("http://127.0.0.1:9001/sns/")
    assert (
        to_all["Records"][0]["EventSubscriptionArn"] != to_red["Records"][0]["EventSubscriptionArn"]
    )
    assert functions.request_ids("svc.all") != functions.request_ids("svc.red")
    assert await store.peek("sub:orders:svc.all") == []


async def test_each_subscription_retries_on_its_own_then_dead_letters(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    def fail(event: Any) -> Any:
        raise FunctionError("RuntimeError", "downstream is down")

    functions.handlers["svc.flaky"] = fail
    topics = _topics(
        store,
        functions,
        clock,
        Subscription("orders", _target("svc.flaky", max_retries=1, backoff_s=1.0)),
        Subscription("orders", _target("svc.fine")),
    )
    started(topics)
    message_id = await topics.publish("orders", "hello")
    await eventually(lambda: len(functions.calls) == 2, "the first attempts")
    await eventually(lambda: topics.delivered == 1, "the healthy subscriber's ack")

    await advance(clock, topics, seconds=1.0)  # the retry's backoff (full jitter: <= 1 s)
    await eventually(lambda: topics.dead_lettered == 1, "the retry to fail and dead-letter")

    assert len(functions.events("svc.flaky")) == 2, "one attempt + max_retries"
    assert len(functions.events("svc.fine")) == 1
    first, retry = functions.request_ids("svc.flaky")
    assert first == retry, "an async delivery keeps its request id across retries"
    [dead] = await store.peek("dlq:sub:orders:svc.flaky")
    assert dead.receive_count == 2 and dead.attributes["sns_message_id"] == message_id
    assert dead.last_error is not None and dead.last_error["errorType"] == "RuntimeError"
    assert await store.peek("sub:orders:svc.flaky") == []


async def test_a_message_no_filter_accepts_is_stored_nowhere(
    store: Store, functions: FakeFunctions, clock: FakeClock
) -> None:
    topics = _topics(store, functions, clock, Subscription("t", _target("svc.a"), {"kind": ["x"]}))

    await topics.publish("t", "m", attributes={"kind": "y"})
    await topics.publish("t", "m")

    assert await store.stats() == []


async def test_publish_refuses_unknown_topics_large_messages_and_bad_attributes(
    store: Store, functions: FakeFunctions, clock: FakeClock
) -> None:
    topics = _topics(store, functions, clock, Subscription("orders", _target("svc.a")))

    with pytest.raises(TopicNotFound) as unknown:
        await topics.publish("order", "m")
    assert "no topic named 'order'" in str(unknown.value) and "'orders'" in str(unknown.value)
    with pytest.raises(PayloadTooLarge, match="1048577 bytes; the limit is 1048576 bytes"):
        await topics.publish("orders", "x" * (1024 * 1024 + 1))
    with pytest.raises(InvalidMessage, match="attribute 'tags': list items"):
        await topics.publish("orders", "m", attributes={"tags": [{"nested": 1}]})
    assert await store.stats() == []
