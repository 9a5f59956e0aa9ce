"""Events: durable asynchronous invocations, queues and topics, with retries, backoff and dead
letters. Every event it accepts is in the store before it is acknowledged, and is delivered at
least once.

It decides when to deliver and retry; the invoker runs the functions, the store keeps the
events. One mechanism (`Consumer`) leases, batches and heartbeats for all of them. Entry
points: `AsyncInvoker`, `Queues`, `Topics` (and their target types), `Consumer`.
"""

from __future__ import annotations

from lamina.events.async_invoke import (
    AsyncDelivery,
    AsyncInvoker,
    AsyncTarget,
    async_queue,
    dead_letter_queue,
)
from lamina.events.consumer import Consumer, Source
from lamina.events.queues import Queues, QueueTarget, queue_store_name, queue_targets
from lamina.events.topics import Subscription, Topics, subscription_queue, subscriptions

__all__ = [
    "AsyncDelivery",
    "AsyncInvoker",
    "AsyncTarget",
    "Consumer",
    "QueueTarget",
    "Queues",
    "Source",
    "Subscription",
    "Topics",
    "async_queue",
    "dead_letter_queue",
    "queue_store_name",
    "queue_targets",
    "subscription_queue",
    "subscriptions",
]
