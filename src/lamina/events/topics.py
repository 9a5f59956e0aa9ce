"""Topic triggers: publish once, deliver to every subscribed function as an SNS event.

`Topics.publish` filters at publish time: for every subscription whose `filter_policy` accepts
the message attributes it stores one message in the subscription's queue
`sub:<topic>:<function_id>`, all in ONE store transaction, so a publish reaches all matching
subscribers or none. Each subscription is then delivered on its own, one SNS record per
invocation as SNS does (`shapes.sns_event`), with asynchronous-invocation semantics
(`AsyncDelivery`): retries with backoff per the subscriber's `async:` settings, then
`dlq:sub:<topic>:<function_id>`. A subscriber that keeps failing does not hold back the others.

Ids. `MessageId` is the published message's id, the same for every subscriber and every retry.
Each subscription's delivery has its own request id (`context.aws_request_id`), stable across
that delivery's retries, as for any asynchronous invocation on AWS.

A function that subscribes to one topic twice (two triggers) gets one delivery per message,
when either filter policy accepts it. Message bodies are limited to 1 MiB, as queue messages
and asynchronous invocations (SNS allows 256 KiB).

Tracing: the publisher's `traceparent` is kept in each subscription message's system attributes,
so every subscriber's invocation is a child of the publisher's span.
"""

from __future__ import annotations

import functools
import logging
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from lamina.clock import Clock
from lamina.errors import InvalidMessage, PayloadTooLarge, ShuttingDown, TopicNotFound
from lamina.events._attributes import MAX_MESSAGE_BYTES, decode_attributes, encode_attributes
from lamina.events.async_invoke import (
    ASYNC_LEASE_S,
    AsyncDelivery,
    AsyncTarget,
    Invoke,
    dead_letter_queue,
)
from lamina.events.consumer import Consumer, Source
from lamina.events.filter_policy import FilterPolicy, compile_policy
from lamina.events.shapes import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, SnsMessage, sns_event
from lamina.executor import InvocationRequest
from lamina.manifest import AppSpec
from lamina.manifest.models import TopicTrigger
from lamina.store.types import Message, NewMessage, Store
from lamina.telemetry import FunctionOutput
from lamina.telemetry.tracing import parse_traceparent

__all__ = ["Subscription", "Topics", "subscription_queue", "subscriptions"]

log = logging.getLogger(__name__)

_SUBSCRIPTION_NS = uuid.UUID("5f0b6f8e-4c1e-4b7a-9a51-2f1f6d1c0a11")


def subscription_queue(topic: str, function_id: str) -> str:
    """The store queue of `function_id`'s subscription to `topic`."""
    return f"sub:{topic}:{function_id}"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A function subscribed to a topic; its `target` carries the retry settings."""

    topic: str
    target: AsyncTarget
    filter_policy: Mapping[str, Any] | None = None  # SNS filter policy; None accepts everything
    alias: str | None = None  # the function alias it invokes; None: `live`

    @property
    def queue(self) -> str:
        return subscription_queue(self.topic, self.target.function_id)


def subscriptions(app: AppSpec) -> list[Subscription]:
    """Every `topic` trigger of `app`, in file order."""
    return [
        Subscription(
            trigger.name, AsyncTarget.for_function(fn), trigger.filter_policy, trigger.alias
        )
        for fn in app.functions().values()
        for trigger in fn.events
        if isinstance(trigger, TopicTrigger)
    ]


@dataclass(frozen=True, slots=True)
class _Subscriber:
    topic: str
    target: AsyncTarget
    queue: str
    policies: tuple[FilterPolicy, ...]  # accepts when any accepts; empty: accepts everything
    subscription_id: str  # the last part of EventSubscriptionArn
    alias: str | None  # the function alias it invokes; None: `live`

    def accepts(self, attributes: Mapping[str, Any]) -> bool:
        return not self.policies or any(p.matches(attributes) for p in self.policies)


class Topics:
    """The app's topics: `publish` fans a message out; the consumers deliver until `stop()`."""

    def __init__(
        self,
        store: Store,
        invoke: Invoke,
        clock: Clock,
        subscriptions: Sequence[Subscription],
        *,
        rng: random.Random | None = None,
        poll_s: float = 1.0,  # how often to look for messages made due elsewhere
        lease_s: float = ASYNC_LEASE_S,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        base_url: str = "http://127.0.0.1",  # roots the SNS unsubscribe and certificate URLs
    ) -> None:
        self._store = store
        self._clock = clock
        self._region = region
        self._account_id = account_id
        self._base_url = base_url
        self._delivery = AsyncDelivery(store, invoke, clock, rng)
        self._subscribers = _group(subscriptions)
        self.names = tuple(sorted({s.topic for s in subscriptions}))
        sources = [
            Source(
                queue=sub.queue,
                deliver=functools.partial(self._deliver, sub),
                capacity=sub.target.capacity,
                lease_s=lease_s,
                label=sub.target.function_id,
            )
            for subs in self._subscribers.values()
            for sub in subs
        ]
        self.consumer = Consumer(store, clock, sources, poll_s=poll_s)
        self._stopping = False

    @classmethod
    def for_app(
        cls,
        app: AppSpec,
        store: Store,
        invoke: Invoke,
        clock: Clock,
        *,
        poll_s: float = 1.0,
        region: str = DEFAULT_REGION,
        base_url: str = "http://127.0.0.1",
    ) -> Topics:
        return cls(
            store,
            invoke,
            clock,
            subscriptions(app),
            poll_s=poll_s,
            region=region,
            base_url=base_url,
        )

    @property
    def delivered(self) -> int:
        """Subscription deliveries acknowledged by this process."""
        return self._delivery.delivered

    @property
    def dead_lettered(self) -> int:
        return self._delivery.dead_lettered

    @property
    def dead_letter_queues(self) -> list[str]:
        """`dlq:sub:<topic>:<function_id>` of every subscription (for the admin API's listing)."""
        return sorted(
            dead_letter_queue(sub.queue) for subs in self._subscribers.values() for sub in subs
        )

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    # -- publishing --------------------------------------------------------------------------------
    async def publish(
        self,
        topic: str,
        message: str,
        *,
        subject: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        traceparent: str | None = None,
    ) -> str:
        """Fan `message` out to every matching subscription durably; returns its MessageId.
        A valid `traceparent` (the publisher's span) becomes the parent of the deliveries.

        Raises TopicNotFound for a topic no trigger names, PayloadTooLarge past 1 MiB of UTF-8
        message, InvalidMessage for bad attributes or subject."""
        if self._stopping:
            raise ShuttingDown("the platform is shutting down; not accepting messages")
        if topic not in self._subscribers:
            raise TopicNotFound(topic, self.names)
        where = f"topic {topic!r} message"
        if not isinstance(message, str):
            raise InvalidMessage(f"{where}: expected a string, got {type(message).__name__}")
        if subject is not None and not isinstance(subject, str):
            raise InvalidMessage(f"{where}: subject: expected a string, got {subject!r}")
        size = len(message.encode())
        if size > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(what=where, size=size, limit=MAX_MESSAGE_BYTES)
        stored = encode_attributes(where, attributes, arrays=True)
        plain = decode_attributes(stored)
        message_id = str(uuid.uuid4())
        now = self._now_ms()
        system: dict[str, Any] = {"topic": topic, "sns_message_id": message_id}
        context = parse_traceparent(traceparent)
        if context is not None:
            system["traceparent"] = context.header()
        body = orjson.dumps(
            {
                "message_id": message_id,
                "message": message,
                "subject": subject,
                "timestamp_ms": now,
                "attributes": stored,
            }
        )
        fan_out = [
            NewMessage(
                queue=sub.queue,
                body=body,
                attributes={"function_id": sub.target.function_id, **system},
            )
            for sub in self._subscribers[topic]
            if sub.accepts(plain)
        ]
        await self._store.enqueue(fan_out, now_ms=now)
        for new in fan_out:
            self.consumer.wake(new.queue)
        log.debug(
            "topic message published",
            extra={"topic": topic, "message_id": message_id, "subscriptions": len(fan_out)},
        )
        return message_id

    # -- delivering --------------------------------------------------------------------------------
    def start(self) -> None:
        self.consumer.start()

    async def stop(self, grace_s: float) -> None:
        """Stop accepting and leasing; let deliveries in progress finish within `grace_s`."""
        self._stopping = True
        await self.consumer.stop(grace_s)

    async def _deliver(self, sub: _Subscriber, messages: Sequence[Message]) -> None:
        for message in messages:  # one per batch: subscriptions have batch_size 1

            def build(message: Message = message) -> InvocationRequest:
                data = orjson.loads(message.body)
                event = sns_event(
                    SnsMessage(
                        message_id=data["message_id"],
                        message=data["message"],
                        timestamp_ms=data["timestamp_ms"],
                        subject=data.get("subject"),
                        message_attributes=decode_attributes(data.get("attributes")),
                    ),
                    topic=sub.topic,
                    subscription_id=sub.subscription_id,
                    region=self._region,
                    account_id=self._account_id,
                    base_url=self._base_url,
                )
                fid = sub.target.function_id
                return InvocationRequest(
                    message.id,
                    event,
                    None,
                    FunctionOutput(fid, message.id),
                    trigger="topic",
                    traceparent=message.attributes.get("traceparent"),
                )

            await self._delivery.deliver(sub.target, message, build, sub.alias)


def _group(subscriptions: Sequence[Subscription]) -> dict[str, list[_Subscriber]]:
    """Subscribers by topic, one per (topic, function) with all of its filter policies."""
    by_queue: dict[str, tuple[Subscription, list[FilterPolicy], bool]] = {}
    for s in subscriptions:
        policy = compile_policy(s.filter_policy) if s.filter_policy else None
        first, policies, open_ = by_queue.get(s.queue, (s, [], False))
        if policy is None:
            open_ = True
        else:
            policies.append(policy)
        by_queue[s.queue] = (first, policies, open_)
    grouped: dict[str, list[_Subscriber]] = {}
    for queue, (s, policies, open_) in by_queue.items():
        subscriber = _Subscriber(
            topic=s.topic,
            target=s.target,
            queue=queue,
            policies=() if open_ else tuple(policies),
            subscription_id=str(uuid.uuid5(_SUBSCRIPTION_NS, queue)),
            alias=s.alias,  # the manifest gives one function's subscriptions one alias
        )
        grouped.setdefault(s.topic, []).append(subscriber)
    return grouped
