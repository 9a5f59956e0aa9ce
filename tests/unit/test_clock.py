from __future__ import annotations

import asyncio

from lamina.clock import FakeClock


def test_ten_steps_of_a_tenth_make_exactly_one_second() -> None:
    clock = FakeClock(start_s=0)
    for _ in range(10):
        clock.advance(0.1)
    assert clock.monotonic() == 1.0


def test_timers_fire_in_deadline_order_only_when_due_and_not_after_cancel() -> None:
    clock = FakeClock(start_s=0)
    fired: list[str] = []
    clock.call_later(2, lambda: fired.append("two"))
    clock.call_later(1, lambda: fired.append("one"))
    cancelled = clock.call_later(1.5, lambda: fired.append("cancelled"))
    cancelled.cancel()
    clock.advance(0.999)
    assert fired == []
    clock.advance(5)
    assert fired == ["one", "two"]


async def test_sleep_returns_when_time_is_advanced_past_it() -> None:
    clock = FakeClock(start_s=0)
    sleeper = asyncio.ensure_future(clock.sleep(30))
    await asyncio.sleep(0)
    clock.advance(29.9)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(0.1)
    await sleeper
    assert clock.wall() - clock.monotonic() == 1_700_000_000.0
