"""Test doubles for the events component tests: a fake `invoke` standing in for the invoker
(the collaborator boundary) and a bounded wait for effects that go through the real store."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lamina.executor import InvocationRequest, InvocationResult
from lamina.invoker import InvocationOutcome


class FunctionError(Exception):
    """Raised by a fake handler: the invocation returns an error result, as a handler's raise."""

    def __init__(self, error_type: str = "ValueError", message: str = "boom") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


Handler = Callable[[Any], Any]  # event -> result (or an awaitable of it); may raise


@dataclass
class FakeFunctions:
    """`invoke(function_id, request)` that runs a per-function Python handler in process."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    calls: list[tuple[str, InvocationRequest]] = field(default_factory=list)

    def events(self, function_id: str) -> list[Any]:
        return [r.payload for fid, r in self.calls if fid == function_id]

    def request_ids(self, function_id: str) -> list[str]:
        return [r.request_id for fid, r in self.calls if fid == function_id]

    async def invoke(self, function_id: str, request: InvocationRequest) -> InvocationOutcome:
        self.calls.append((function_id, request))
        handler = self.handlers.get(function_id, lambda event: None)
        try:
            value = handler(request.payload)
            if inspect.isawaitable(value):
                value = await value
        except FunctionError as exc:
            error = {"errorType": exc.error_type, "errorMessage": exc.message, "stackTrace": []}
            return InvocationOutcome(InvocationResult(False, error), "i-1", False, 0.0)
        return InvocationOutcome(InvocationResult(True, value), "i-1", False, 0.0)


class Stoppable(Protocol):
    def start(self) -> None: ...

    async def stop(self, grace_s: float) -> None: ...


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str, deadline_s: float = 5.0
) -> None:
    """Wait, bounded, for an effect that passes through the real store (a thread or a server)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.002)


class HasConsumer(Protocol):
    @property
    def consumer(self) -> Any: ...


async def advance(clock: Any, *things: HasConsumer, seconds: float) -> None:
    """Move the fake clock once the consumers sleep, then wait until they sleep again: so every
    timer armed before the move fires, and whatever the move made due has been claimed."""
    for thing in things:
        await eventually(thing.consumer.idle, "the consumers to settle before moving time")
    clock.advance(seconds)
    for thing in things:
        await eventually(thing.consumer.idle, "the consumers to settle after moving time")
