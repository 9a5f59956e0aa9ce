"""Schedules: fire each `schedule` trigger's ticks as durable async invocations, once per tick.

For each schedule the `Scheduler` computes the next tick with the pure `next_run`, sleeps until
it on the injected clock, then asks the store to `claim_tick(schedule_id, tick_ms)`. The store
answers True to exactly one caller across every process sharing it, and only that winner
submits the event, so two platforms on one PostgreSQL fire each tick once.

- Ticks are the same everywhere: rate schedules are anchored at the epoch (`rate(1 hour)` fires
  on the hour, `rate(10 seconds)` at :00, :10, ...), cron schedules are absolute.
- The event is the EventBridge "Scheduled Event" for the tick (or the trigger's `input`), sent
  as an async invocation whose request id is derived from (schedule id, tick): a retried submit
  cannot make a second event (the store refuses the same id twice in one queue), and handlers
  see one stable `context.aws_request_id` per tick.
- Catch-up policy: on start, a schedule resumes after its `last_tick`. Of the ticks missed while
  no platform ran, only the latest one is fired, and only if it is at most one period old
  (for cron: the latest missed fire time, if no later one is due yet); older ticks are skipped,
  as EventBridge does not replay a rule's missed runs. A schedule never seen before starts with
  its next tick after now. A scheduler that falls behind (a long pause) skips the same way.
- Caveat: the claim and the submit are two store operations. If the process dies between them
  the tick is recorded as fired but its event is never stored: at most one tick is lost per
  crash, never duplicated.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from lamina.clock import Clock
from lamina.errors import DuplicateMessage, ManifestError, ShuttingDown
from lamina.events.schedule import Schedule, next_run, parse_schedule
from lamina.events.shapes import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, scheduled_event
from lamina.invoker.aliases import qualified
from lamina.manifest import FunctionSpec
from lamina.manifest.models import ScheduleTrigger
from lamina.store.types import Store

__all__ = [
    "ScheduledTarget",
    "Scheduler",
    "latest_due",
    "schedule_id",
    "schedule_targets",
    "tick_request_id",
]

log = logging.getLogger(__name__)

# Submitting a claimed tick is retried this many times, waiting these seconds in between.
_SUBMIT_RETRY_S = (0.2, 1.0, 5.0)
_CRON_CATCH_UP_STEPS = 10_000  # cron ticks walked at most to find the latest missed one
_DAY_MS = 86_400_000
_NAMESPACE = uuid.UUID("6f9e8a52-4c1b-5d43-9a57-1a0c6b1e5d2f")  # Lamina schedule tick ids

# (target: function id, `id:alias` with an alias, payload, request id)
Submit = Callable[[str, bytes, str], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ScheduledTarget:
    """One `schedule` trigger of one function."""

    schedule_id: str  # f"{function_id}#{index}", index of the trigger in the function's events
    function_id: str
    schedule: Schedule
    input: Any = None  # JSON value sent instead of the scheduled event; None: the event
    alias: str | None = None  # the function alias it invokes; None: `live`


def schedule_id(function_id: str, index: int) -> str:
    return f"{function_id}#{index}"


def tick_request_id(schedule_id: str, tick_ms: int) -> str:
    """The request (and event) id of one tick: the same in every process, on every retry."""
    return str(uuid.uuid5(_NAMESPACE, f"{schedule_id}@{tick_ms}"))


def schedule_targets(functions: Iterable[FunctionSpec]) -> list[ScheduledTarget]:
    """Every schedule trigger of `functions`; raises ManifestError for an invalid expression."""
    targets = []
    for fn in functions:
        for index, trigger in enumerate(fn.events):
            if not isinstance(trigger, ScheduleTrigger):
                continue
            try:
                parsed = parse_schedule(trigger.expression)
            except ValueError as exc:
                raise ManifestError(
                    str(exc),
                    path=f"services.{fn.service}.functions.{fn.name}.events[{index}].schedule",
                ) from None
            targets.append(
                ScheduledTarget(
                    schedule_id(fn.id, index), fn.id, parsed, trigger.input, trigger.alias
                )
            )
    return targets


def latest_due(schedule: Schedule, after_ms: int, now_ms: int) -> int | None:
    """The latest tick in (after_ms, now_ms], or None if none is due. Pure.

    Worked example (test "a restart fires only the latest missed tick"): rate period 60_000,
    anchor 0, last tick 60_000, now 250_000 -> ticks 120_000, 180_000, 240_000 were missed;
    the result is 240_000.
    """
    first = next_run(schedule, after_ms)
    if first is None or first > now_ms:
        return None
    if schedule.kind == "rate":
        assert schedule.period_ms is not None
        k = (now_ms - schedule.anchor_ms) // schedule.period_ms
        return schedule.anchor_ms + k * schedule.period_ms
    start = first
    if (now_ms - first) // _DAY_MS > 0:
        # Long outage: walk only the last day, or from `first` if the schedule is sparser.
        recent = next_run(schedule, now_ms - _DAY_MS)
        if recent is not None and recent <= now_ms:
            start = recent
    tick = start
    for _ in range(_CRON_CATCH_UP_STEPS):
        following = next_run(schedule, tick)
        if following is None or following > now_ms:
            return tick
        tick = following
    return tick


class Scheduler:
    """Fires the ticks of `targets` until stopped; safe to run in several processes at once."""

    def __init__(
        self,
        store: Store,
        targets: Sequence[ScheduledTarget],
        submit: Submit,
        clock: Clock,
        owner: str,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        self._store = store
        self.targets = list(targets)
        self._submit = submit
        self._clock = clock
        self._owner = owner  # recorded with each claimed tick: which process fired it
        self._region = region
        self._account_id = account_id
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.fired = 0  # ticks this process claimed and submitted
        self.sleeping = 0  # schedules now waiting for their next tick (tests wait on it)

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(t)) for t in self.targets]

    async def stop(self) -> None:
        """Stop at once; a tick being submitted is cut short (it is claimed: see the caveat)."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, target: ScheduledTarget) -> None:
        sid = target.schedule_id
        try:
            last = await self._store.last_tick(sid)
        except Exception:
            log.exception("reading the last schedule tick failed", extra={"schedule_id": sid})
            last = None
        now = self._now_ms()
        tick = self._first_tick(target.schedule, last, now)
        if last is not None and tick is not None and tick <= now:
            log.info(
                "schedule resumes with a missed tick",
                extra={"schedule_id": sid, "tick_ms": tick, "last_tick_ms": last},
            )
        while not self._stopping:
            if tick is None:
                log.info("schedule has no future ticks", extra={"schedule_id": sid})
                return
            await self._sleep_until(tick)
            try:
                await self._fire(target, tick)
            except ShuttingDown:
                return
            now = self._now_ms()
            tick = latest_due(target.schedule, tick, now) or next_run(target.schedule, tick)

    @staticmethod
    def _first_tick(schedule: Schedule, last: int | None, now: int) -> int | None:
        if last is None:
            return next_run(schedule, now)
        return latest_due(schedule, last, now) or next_run(schedule, max(last, now))

    async def _sleep_until(self, tick_ms: int) -> None:
        # Timers run on the monotonic clock; re-check the wall clock so a tick never fires
        # early, whatever drift lies between the two.
        while (wait_ms := tick_ms - self._now_ms()) > 0:
            woken = asyncio.Event()

            def wake(woken: asyncio.Event = woken) -> None:
                self.sleeping -= 1  # at once, so tests see the tick as due before it runs
                woken.set()

            self.sleeping += 1
            timer = self._clock.call_later(wait_ms / 1000, wake)
            try:
                await woken.wait()
            finally:
                if not woken.is_set():
                    self.sleeping -= 1
                timer.cancel()

    async def _fire(self, target: ScheduledTarget, tick_ms: int) -> None:
        sid = target.schedule_id
        try:
            won = await self._store.claim_tick(sid, tick_ms, owner=self._owner)
        except Exception:
            log.exception("claiming a schedule tick failed", extra={"schedule_id": sid})
            return
        if not won:
            return
        request_id = tick_request_id(sid, tick_ms)
        payload = self._payload(target, tick_ms, request_id)
        for attempt, delay_s in enumerate((*_SUBMIT_RETRY_S, None)):
            try:
                await self._submit(qualified(target.function_id, target.alias), payload, request_id)
            except DuplicateMessage:
                pass  # an earlier attempt stored it after all
            except ShuttingDown:
                raise
            except Exception:
                if delay_s is None:
                    log.exception(
                        "scheduled event lost: submitting failed",
                        extra={"schedule_id": sid, "tick_ms": tick_ms, "attempts": attempt + 1},
                    )
                    return
                log.warning(
                    "submitting a scheduled event failed; retrying",
                    extra={"schedule_id": sid, "tick_ms": tick_ms, "delay_s": delay_s},
                    exc_info=True,
                )
                await self._clock.sleep(delay_s)
                continue
            self.fired += 1
            log.info(
                "schedule fired",
                extra={"schedule_id": sid, "tick_ms": tick_ms, "request_id": request_id},
            )
            return

    def _payload(self, target: ScheduledTarget, tick_ms: int, request_id: str) -> bytes:
        if target.input is not None:
            return orjson.dumps(target.input)
        event = scheduled_event(
            event_id=request_id,
            time_ms=tick_ms,
            rule=target.schedule_id.replace("#", "-"),
            region=self._region,
            account_id=self._account_id,
        )
        return orjson.dumps(event)
