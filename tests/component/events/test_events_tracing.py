"""Trace context through the durable event paths, on a real store (SQLite and PostgreSQL): the
producer's `traceparent` is kept with the message as a system attribute (not a message
attribute) and becomes the parent of the consuming invocation; an invalid one is dropped."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from fakes import FakeFunctions, Stoppable, eventually

from lamina.clock import FakeClock
from lamina.events import AsyncInvoker, AsyncTarget, Queues, QueueTarget, Subscription, Topics
from lamina.store import Store

pytestmark = pytest.mark.timeout(20)

Start = Callable[[Stoppable], Stoppable]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER = f"00-{TRACE}-00f067aa0ba902b7-01"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _target(function_id: str) -> AsyncTarget:
    return AsyncTarget(
        function_id=function_id,
        timeout_s=3,
        wait_s=10,
        capacity=2,
        max_retries=0,
        backoff_s=1,
        max_event_age_s=3600,
    )


async def test_a_queue_message_keeps_its_senders_trace_as_sqs_does(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    queues = Queues(
        store, functions.invoke, clock, [QueueTarget(queue="jobs", function_id="svc.w")]
    )
    await queues.send("jobs", "traced", attributes={"k": "v"}, traceparent=SENDER)
    await queues.send("jobs", "other trace", traceparent=OTHER)
    await queues.send("jobs", "untraced")
    started(queues)

    await eventually(lambda: queues.delivered == 3, "the batch to be acknowledged")

    ((_, request),) = functions.calls
    assert request.traceparent == SENDER  # the batch joins its first traced message's trace
    records = request.payload["Records"]
    assert records[0]["attributes"]["AWSTraceHeader"] == (
        "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
    )
    assert records[1]["attributes"]["AWSTraceHeader"].startswith("Root=1-0af76519-")
    assert "AWSTraceHeader" not in records[2]["attributes"]
    assert list(records[0]["messageAttributes"]) == ["k"]  # not a user message attribute


async def test_a_topic_message_gives_every_subscriber_the_publishers_trace(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    topics = Topics(
        store,
        functions.invoke,
        clock,
        [Subscription("orders", _target("svc.a")), Subscription("orders", _target("svc.b"))],
        rng=random.Random(7),
    )
    await topics.publish("orders", "placed", traceparent=SENDER)
    started(topics)

    await eventually(lambda: topics.delivered == 2, "both deliveries")

    assert sorted((fid, r.traceparent) for fid, r in functions.calls) == [
        ("svc.a", SENDER),
        ("svc.b", SENDER),
    ]
    (event,) = functions.events("svc.a")
    assert event["Records"][0]["Sns"]["MessageAttributes"] == {}


async def test_an_async_event_keeps_its_callers_trace_and_drops_an_invalid_one(
    store: Store, functions: FakeFunctions, clock: FakeClock, started: Start
) -> None:
    invoker = AsyncInvoker(store, functions.invoke, {"svc.f": _target("svc.f")}, clock)
    await invoker.submit("svc.f", b"{}", request_id="req-1", traceparent=SENDER)
    await invoker.submit("svc.f", b"{}", request_id="req-2", traceparent="00-nonsense")
    started(invoker)

    await eventually(lambda: invoker.delivered == 2, "both events")

    assert sorted((r.request_id, r.traceparent) for _, r in functions.calls) == [
        ("req-1", SENDER),
        ("req-2", None),  # the invocation starts a trace of its own
    ]
