"""Events: durable asynchronous invocations with retries, backoff and dead letters (and, next,
queues, topics and schedules). Every event it accepts is in the store before it is
acknowledged, and is delivered at least once.

It decides when to deliver and retry; the invoker runs the functions, the store keeps the
events. Entry points: `AsyncInvoker`, `AsyncTarget`.
"""

from __future__ import annotations

from lamina.events.async_invoke import AsyncInvoker, AsyncTarget, async_queue, dead_letter_queue

__all__ = ["AsyncInvoker", "AsyncTarget", "async_queue", "dead_letter_queue"]
