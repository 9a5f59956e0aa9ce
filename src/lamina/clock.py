"""Injected time: `Clock` for mechanisms, `SystemClock` in production, `FakeClock` in tests.

Policies never read a clock; they take `now_s` as an argument. Mechanisms take a `Clock` so
that tests move time instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock", "Timer"]


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds for durations and deadlines."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, for timestamps in records."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for `seconds`."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` on the event loop after `seconds`; cheaper than a sleeping task."""
        ...


class SystemClock:
    """The real clock."""

    # The C functions themselves, not methods calling them: the warm path reads the clock
    # about six times per request, and a Python frame around each cost ~0.1 µs.
    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)


class FakeClock:
    """A clock that only moves when `advance()` is called; counts integer milliseconds.

    Ten calls of `advance(0.1)` make exactly one second. Sleepers whose deadline is reached
    are woken in deadline order.
    """

    def __init__(self, start_s: float = 1000.0, wall_offset_s: float = 1_700_000_000.0) -> None:
        self._now_ms = round(start_s * 1000)
        self._wall_offset_ms = round(wall_offset_s * 1000)
        self._timers: list[tuple[int, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now_ms / 1000

    def wall(self) -> float:
        return (self._now_ms + self._wall_offset_ms) / 1000

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await fut
        finally:
            timer.cancel()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer(callback)
        due = self._now_ms + max(0, round(seconds * 1000))
        heapq.heappush(self._timers, (due, next(self._seq), timer))
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward and run every timer that is due, in deadline order."""
        self._now_ms += round(seconds * 1000)
        while self._timers and self._timers[0][0] <= self._now_ms:
            _, _, timer = heapq.heappop(self._timers)
            timer.fire()


class _FakeTimer:
    __slots__ = ("_callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self._callback = None

    def fire(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()
