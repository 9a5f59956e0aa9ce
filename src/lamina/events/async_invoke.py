"""Durable asynchronous invocations (`InvocationType: Event`, `lamina.invoke_async`).

An event is written to the store before the caller is answered, then delivered at least once:
each function has a consumer that leases events from its queue `async:<function_id>`, invokes
the function with the event's id as `context.aws_request_id` (the same on every retry, as on
AWS), and then acknowledges it, schedules a retry with exponential backoff, or moves it to the
dead-letter queue `dlq:async:<function_id>` after the last attempt or past `max_event_age`.

A lease outlives the function's timeout, so an event whose instance crashed, or whose platform
died, becomes visible again when its lease ends and is retried: that is the at-least-once
guarantee, and the source of possible duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from lamina.clock import Clock
from lamina.errors import InvocationError, ShuttingDown, Throttled
from lamina.events.backoff import backoff_ms
from lamina.executor import INIT_TIMEOUT_S, InvocationRequest
from lamina.invoker import InvocationOutcome
from lamina.store.types import Message, NewMessage, Store
from lamina.telemetry import FunctionOutput

__all__ = ["AsyncInvoker", "AsyncTarget", "async_queue", "dead_letter_queue"]

log = logging.getLogger(__name__)

_CLAIM_BATCH = 10  # events leased per store round trip
_THROTTLED_RETRY_MS = 1000  # a throttled event is retried this soon, as capacity frees up
_LEASE_MARGIN_S = 5.0

Invoke = Callable[[str, InvocationRequest], Awaitable[InvocationOutcome]]


def async_queue(function_id: str) -> str:
    return f"async:{function_id}"


def dead_letter_queue(queue: str) -> str:
    return f"dlq:{queue}"


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

    @property
    def lease_ms(self) -> int:
        """Longer than any attempt can take, so only a dead consumer lets a lease lapse."""
        return int((self.timeout_s + self.wait_s + INIT_TIMEOUT_S + _LEASE_MARGIN_S) * 1000)


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
    ) -> None:
        self._store = store
        self._invoke = invoke
        self.targets = dict(targets)
        self._clock = clock
        self._rng = rng or random.Random()
        self._poll_s = poll_s  # how often to look for events other processes or delays made due
        self._wake = {fid: asyncio.Event() for fid in self.targets}
        self._in_flight = dict.fromkeys(self.targets, 0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumers: list[asyncio.Task[None]] = []
        self._stopping = False
        self.delivered = 0  # events acknowledged by this process
        self.dead_lettered = 0

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    # -- accepting ---------------------------------------------------------------------------------
    async def submit(
        self,
        function_id: str,
        payload: bytes,
        *,
        request_id: str,
        client_context: Mapping[str, Any] | None = None,
    ) -> str:
        """Store the event durably; when this returns, the event will be delivered."""
        if self._stopping:
            raise ShuttingDown("the platform is shutting down; not accepting events")
        attributes: dict[str, Any] = {"function_id": function_id}
        if client_context:
            attributes["client_context"] = dict(client_context)
        message = NewMessage(
            queue=async_queue(function_id),
            body=payload,
            attributes=attributes,
            message_id=request_id,
        )
        (event_id,) = await self._store.enqueue([message], now_ms=self._now_ms())
        self._wake[function_id].set()
        return event_id

    # -- delivering --------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._consumers = [loop.create_task(self._consume(t)) for t in self.targets.values()]

    async def stop(self, grace_s: float) -> None:
        """Stop leasing; let deliveries in progress finish within `grace_s`. Events still
        leased when it returns are delivered again once their lease ends (at least once)."""
        self._stopping = True
        for event in self._wake.values():
            event.set()
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "async deliveries cut short at shutdown", extra={"events": len(pending)}
                )
                await asyncio.gather(*pending, return_exceptions=True)

    async def _consume(self, target: AsyncTarget) -> None:
        fid = target.function_id
        queue = async_queue(fid)
        wake = self._wake[fid]
        while not self._stopping:
            free = target.capacity - self._in_flight[fid]
            messages: list[Message] = []
            if free > 0:
                try:
                    messages = await self._store.claim(
                        queue,
                        max_messages=min(free, _CLAIM_BATCH),
                        lease_ms=target.lease_ms,
                        now_ms=self._now_ms(),
                    )
                except Exception:
                    log.exception("claiming async events failed", extra={"function_id": fid})
            if not messages:
                timer = self._clock.call_later(self._poll_s, wake.set)
                try:
                    await wake.wait()
                finally:
                    timer.cancel()
                wake.clear()
                continue
            for message in messages:
                self._in_flight[fid] += 1
                task = asyncio.get_running_loop().create_task(self._deliver(target, message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, target: AsyncTarget, message: Message) -> None:
        fid = target.function_id
        try:
            await self._attempt(target, message)
        except Exception:
            log.exception(
                "async delivery failed", extra={"function_id": fid, "request_id": message.id}
            )
        finally:
            self._in_flight[fid] -= 1
            self._wake[fid].set()

    async def _attempt(self, target: AsyncTarget, message: Message) -> None:
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
        client_context = message.attributes.get("client_context")
        request = InvocationRequest(
            message.id,
            orjson.Fragment(message.body),
            client_context if isinstance(client_context, dict) else None,
            FunctionOutput(fid, message.id),
        )
        error: dict[str, Any] | None
        try:
            outcome = await self._invoke(fid, request)
            error = None if outcome.result.ok else _error_of(outcome.result.value)
        except (Throttled, ShuttingDown):
            # Not the function's fault: try again soon.
            await self._store.release(
                queue, message.id, token, delay_ms=_THROTTLED_RETRY_MS, now_ms=self._now_ms()
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
        moved = await self._store.move(
            message.queue,
            message.id,
            message.lease_token or "",
            to_queue=dead_letter_queue(message.queue),
            now_ms=self._now_ms(),
            error=error,
        )
        if moved:
            self.dead_lettered += 1
            log.warning(
                "async event dead-lettered",
                extra={
                    "function_id": target.function_id,
                    "request_id": message.id,
                    "attempts": message.receive_count,
                    "error": error.get("errorType"),
                },
            )


def _error_of(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {
            "errorType": str(value.get("errorType", "Unhandled")),
            "errorMessage": str(value.get("errorMessage", "")),
        }
    return {"errorType": "Unhandled", "errorMessage": str(value)}
