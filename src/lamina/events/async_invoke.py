"""Durable asynchronous invocations (`InvocationType: Event`, `lamina.invoke_async`).

An event is written to the store before the caller is answered, then delivered at least once:
each function has a consumer (`events.consumer`) that leases events from its queue
`async:<function_id>`, invokes the function with the event's id as `context.aws_request_id`
(the same on every retry, as on AWS), and then acknowledges it, schedules a retry with
exponential backoff, or moves it to the dead-letter queue `dlq:async:<function_id>` after the
last attempt or past `max_event_age`. `AsyncDelivery` holds those semantics; topic
subscriptions (`events.topics`) deliver with it too.

Leases are short (`ASYNC_LEASE_S`) and kept alive by the consumer's heartbeat while an attempt
runs, so an event whose platform died becomes visible again within seconds and is retried:
that is the at-least-once guarantee, and the source of possible duplicates.

Tracing: the caller's `traceparent` is kept in the event's system attributes (`traceparent`),
so every attempt's span is a child of the caller's span, in the caller's trace.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from lamina.clock import Clock
from lamina.errors import InvocationError, ShuttingDown, Throttled
from lamina.events.backoff import backoff_ms
from lamina.events.consumer import Consumer, Source, dead_letter_queue, move_to_dead_letters
from lamina.executor import InvocationRequest
from lamina.invoker import InvocationOutcome
from lamina.invoker.aliases import qualified
from lamina.manifest import FunctionSpec
from lamina.store.types import Message, NewMessage, Store
from lamina.telemetry import FunctionOutput
from lamina.telemetry.tracing import parse_traceparent

__all__ = [
    "ASYNC_LEASE_S",
    "AsyncDelivery",
    "AsyncInvoker",
    "AsyncTarget",
    "Invoke",
    "async_queue",
    "dead_letter_queue",
    "error_of",
]

log = logging.getLogger(__name__)

ASYNC_LEASE_S = 5.0  # lease of an event being delivered; the heartbeat renews it every lease/3
THROTTLED_RETRY_MS = 1000  # a throttled delivery is retried this soon, as capacity frees up

# The invoker's entry point (`Invoker.invoke`); tests pass a fake.
Invoke = Callable[[str, InvocationRequest], Awaitable[InvocationOutcome]]


def async_queue(function_id: str) -> str:
    return f"async:{function_id}"


@dataclass(frozen=True, slots=True)
class AsyncTarget:
    """One function's asynchronous delivery settings."""

    function_id: str
    timeout_s: float  # the function's timeout
    wait_s: float  # the most an invocation may wait in the pool's queue
    capacity: int  # invocations at once: max_instances * concurrency
    max_retries: int  # retries after the first attempt, 0..2
    backoff_s: float  # delay before the first retry; doubles after each one
    max_event_age_s: float  # events older than this go to the dead-letter queue

    @classmethod
    def for_function(cls, fn: FunctionSpec) -> AsyncTarget:
        """The settings `lamina.yaml` gives `fn` (its `async:` section and limits)."""
        return cls(
            function_id=fn.id,
            timeout_s=fn.timeout,
            wait_s=fn.queue_timeout,
            capacity=fn.max_instances * fn.concurrency,
            max_retries=fn.async_invoke.max_retries,
            backoff_s=fn.async_invoke.backoff,
            max_event_age_s=fn.async_invoke.max_event_age,
        )


class AsyncDelivery:
    """Delivers one leased event with asynchronous-invocation semantics: acknowledge on
    success; on a function error retry `max_retries` times with capped exponential backoff and
    full jitter; then, or once the event is older than `max_event_age`, move it to
    `dlq:<its queue>` with the last error. Throttling is not the function's fault: the event
    is released to be tried again in `THROTTLED_RETRY_MS`."""

    def __init__(
        self, store: Store, invoke: Invoke, clock: Clock, rng: random.Random | None = None
    ) -> None:
        self._store = store
        self._invoke = invoke
        self._clock = clock
        self._rng = rng or random.Random()
        self.delivered = 0  # events acknowledged by this process
        self.dead_lettered = 0

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    async def deliver(
        self,
        target: AsyncTarget,
        message: Message,
        build: Callable[[], InvocationRequest],
        qualifier: str | None = None,
    ) -> None:
        """Attempt `message` once; `build` makes the request (called only if it is attempted).
        `qualifier` names the alias or version to run (None: `live`); a canary draws anew on
        each attempt."""
        fid, queue, token = target.function_id, message.queue, message.lease_token or ""
        age_s = (self._now_ms() - message.created_ms) / 1000
        if age_s > target.max_event_age_s:
            too_old: dict[str, Any] = {
                "errorType": "EventAgeExceeded",
                "errorMessage": f"event is {age_s:.1f} s old; max_event_age is "
                f"{target.max_event_age_s:g} s",
            }
            await self._dead_letter(target, message, too_old)
            return
        error: dict[str, Any] | None
        try:
            outcome = await self._invoke(qualified(fid, qualifier), build())
            error = None if outcome.result.ok else error_of(outcome.result.value)
        except (Throttled, ShuttingDown):
            # Not the function's fault: try again soon.
            await self._store.release(
                queue, message.id, token, delay_ms=THROTTLED_RETRY_MS, now_ms=self._now_ms()
            )
            return
        except InvocationError as exc:
            error = {"errorType": exc.error_type, "errorMessage": exc.message}
        if error is None:
            if await self._store.ack(queue, message.id, token):
                self.delivered += 1
            return
        error["attempt"] = message.receive_count
        if message.receive_count > target.max_retries:
            await self._dead_letter(target, message, error)
            return
        delay = backoff_ms(
            message.receive_count,
            base_ms=max(1, int(target.backoff_s * 1000)),
            cap_ms=max(1, int(target.max_event_age_s * 1000)),
            rng=self._rng,
        )
        log.info(
            "async invocation failed; retry scheduled",
            extra={
                "function_id": fid,
                "request_id": message.id,
                "queue": queue,
                "attempt": message.receive_count,
                "delay_ms": delay,
                "error": error.get("errorType"),
            },
        )
        await self._store.release(
            queue, message.id, token, delay_ms=delay, now_ms=self._now_ms(), error=error
        )

    async def _dead_letter(
        self, target: AsyncTarget, message: Message, error: Mapping[str, Any]
    ) -> None:
        moved = await move_to_dead_letters(self._store, message, error, now_ms=self._now_ms())
        if moved:
            self.dead_lettered += 1
            log.warning(
                "async event dead-lettered",
                extra={
                    "function_id": target.function_id,
                    "request_id": message.id,
                    "queue": message.queue,
                    "attempts": message.receive_count,
                    "error": error.get("errorType"),
                },
            )


class AsyncInvoker:
    """Accepts events durably and delivers them to their functions until stopped."""

    def __init__(
        self,
        store: Store,
        invoke: Invoke,
        targets: Mapping[str, AsyncTarget],
        clock: Clock,
        *,
        rng: random.Random | None = None,
        poll_s: float = 1.0,
        lease_s: float = ASYNC_LEASE_S,
    ) -> None:
        self._store = store
        self.targets = dict(targets)
        self._clock = clock
        self._delivery = AsyncDelivery(store, invoke, clock, rng)
        sources = [
            Source(
                queue=async_queue(fid),
                deliver=functools.partial(self._deliver, target),
                capacity=target.capacity,
                lease_s=lease_s,
                label=fid,
            )
            for fid, target in self.targets.items()
        ]
        self.consumer = Consumer(store, clock, sources, poll_s=poll_s)
        self._stopping = False

    @property
    def delivered(self) -> int:
        """Events acknowledged by this process."""
        return self._delivery.delivered

    @property
    def dead_lettered(self) -> int:
        """Events this process moved to a dead-letter queue."""
        return self._delivery.dead_lettered

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    # -- accepting ---------------------------------------------------------------------------------
    async def submit(
        self,
        target: str,
        payload: bytes,
        *,
        request_id: str,
        client_context: Mapping[str, Any] | None = None,
        trigger: str = "event",
        traceparent: str | None = None,
    ) -> str:
        """Store the event durably for `target` (`orders.create`, or with a qualifier:
        `orders.create:beta`, `orders.create:7`); when this returns, the event will be
        delivered, every attempt to the alias or version the qualifier names (it is stored
        with the event). A valid `traceparent` (the caller's span) becomes the parent of its
        invocations."""
        if self._stopping:
            raise ShuttingDown("the platform is shutting down; not accepting events")
        function_id, has_qualifier, qualifier = target.partition(":")
        attributes: dict[str, Any] = {"function_id": function_id}
        if has_qualifier:
            attributes["qualifier"] = qualifier
        if trigger != "event":
            attributes["trigger"] = trigger
        if client_context:
            attributes["client_context"] = dict(client_context)
        context = parse_traceparent(traceparent)
        if context is not None:
            attributes["traceparent"] = context.header()
        message = NewMessage(
            queue=async_queue(function_id),
            body=payload,
            attributes=attributes,
            message_id=request_id,
        )
        (event_id,) = await self._store.enqueue([message], now_ms=self._now_ms())
        self.consumer.wake(message.queue)
        return event_id

    # -- delivering --------------------------------------------------------------------------------
    def start(self) -> None:
        self.consumer.start()

    async def stop(self, grace_s: float) -> None:
        """Stop leasing; let deliveries in progress finish within `grace_s`. Events still
        leased when it returns are delivered again once their lease ends (at least once)."""
        self._stopping = True
        await self.consumer.stop(grace_s)

    async def _deliver(self, target: AsyncTarget, messages: Sequence[Message]) -> None:
        for message in messages:  # one per batch: async sources have batch_size 1

            def build(message: Message = message) -> InvocationRequest:
                client_context = message.attributes.get("client_context")
                return InvocationRequest(
                    message.id,
                    orjson.Fragment(message.body),
                    client_context if isinstance(client_context, dict) else None,
                    FunctionOutput(target.function_id, message.id),
                    trigger=str(message.attributes.get("trigger", "event")),
                    traceparent=message.attributes.get("traceparent"),
                )

            qualifier = message.attributes.get("qualifier")
            await self._delivery.deliver(
                target, message, build, qualifier if isinstance(qualifier, str) else None
            )


def error_of(value: Any) -> dict[str, Any]:
    """`{"errorType", "errorMessage"}` of a failed invocation's result body."""
    if isinstance(value, dict):
        return {
            "errorType": str(value.get("errorType", "Unhandled")),
            "errorMessage": str(value.get("errorMessage", "")),
        }
    return {"errorType": "Unhandled", "errorMessage": str(value)}
