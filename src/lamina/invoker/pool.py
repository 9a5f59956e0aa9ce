"""One function's pool of instances: routes each invocation to a free instance, starts new ones
when the scaling policy says so, queues callers for a bounded time, and stops idle instances."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from lamina.clock import Clock, Timer
from lamina.errors import (
    FunctionCrashed,
    FunctionOutOfMemory,
    FunctionTimeout,
    InitError,
    InvocationError,
    PlatformError,
    ShuttingDown,
    Throttled,
)
from lamina.executor import (
    INIT_TIMEOUT_S,
    ExecutorBackend,
    FunctionConfig,
    Instance,
    InvocationRequest,
    InvocationResult,
    NotStarted,
)
from lamina.invoker.capacity import Capacity
from lamina.invoker.pick import can_send_behind, pick_behind, pick_instance
from lamina.scaling import (
    Decision,
    IdleHistory,
    InstanceView,
    PoolSnapshot,
    ScalingSpec,
    ScalingState,
    Windows,
    decide,
    on_arrival,
    on_idle,
)
from lamina.store.types import InvocationRecord
from lamina.telemetry.recorder import Recorder
from lamina.telemetry.tracing import InvocationSpan, invocation_span

__all__ = ["FunctionPool", "InvocationOutcome", "PoolConfig", "PoolStats", "pool_key"]

log = logging.getLogger(__name__)

_STATUS: dict[type[InvocationError], str] = {  # record status of an invocation that failed
    FunctionTimeout: "timeout",
    FunctionOutOfMemory: "out_of_memory",
    FunctionCrashed: "crashed",
    InitError: "init_error",
}

_RETRY_START_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # delays after consecutive failed starts
_FULL_RETRY_S = (0.5, 10.0)  # other planes hold every lease: ask again (with, without waiters)
# Sending an invocation behind the one an instance runs (see `_may_send_behind`): only for a
# function whose last SHORT_STREAK invocations each took at most SHORT_MS and left their
# instance running, onto an instance whose current invocation started at most SHORT_MS ago.
SHORT_MS = 10.0
SHORT_STREAK = 32
_SHORT_S = SHORT_MS / 1000
# Invocations of such a short function that start in one turn of the event loop go to one
# instance that runs invocations in order (see `_may_batch`): up to BATCH of them, and no
# more than BATCH_BUDGET_MS of the handler's recent runs (the second longest of the run times
# the instances report, decaying: both longest lose _SLOW_DECAY of themselves per invocation).
BATCH = 16
BATCH_BUDGET_MS = 2.0
_SLOW_DECAY = 0.9


@dataclass(frozen=True, slots=True)
class PoolConfig:
    fn: FunctionConfig
    scaling: ScalingSpec
    max_queued: int  # invocations that may wait for a free instance; more are throttled
    queue_timeout_s: float  # how long one may wait before it is throttled


@dataclass(slots=True)  # not frozen: built on every request, frozen __init__ is slower
class InvocationOutcome:
    result: InvocationResult
    instance_id: str
    cold: bool  # the first invocation on a freshly started instance
    init_ms: float  # the instance's init duration (0 when warm)
    version: str = "$LATEST"  # the function version that ran it


@dataclass(slots=True)
class PoolStats:
    invocations: int = 0
    cold_starts: int = 0
    throttles: int = 0
    errors: int = 0


@dataclass(slots=True, eq=False)
class _Slot:
    instance: Instance
    started_s: float
    in_flight: int = 0
    served: int = 0
    idle_since_s: float | None = None
    last_used_s: float = 0.0
    prewarmed: bool = False  # started ahead of demand: its first invocation is not a cold start
    in_order: bool = False  # its instance runs what it is sent one at a time, in order

    @property
    def serial(self) -> bool:
        """Whether it may be sent an invocation behind the one it runs: never once its
        instance has died (its slot stays until the exit is handled)."""
        return self.in_order and self.instance.alive


def pool_key(function_id: str, version: str) -> str:
    """`users.signup` for $LATEST, `users.signup:7` for version 7."""
    return function_id if version == "$LATEST" else f"{function_id}:{version}"


class FunctionPool:
    """Instances of one function version, with in-flight accounting and scaling applied."""

    def __init__(
        self,
        config: PoolConfig,
        backend: ExecutorBackend,
        clock: Clock,
        recorder: Recorder | None = None,
        capacity: Capacity | None = None,  # None: this process alone counts max_instances
    ) -> None:
        self.config = config
        self.fn = config.fn
        self._backend = backend
        self._clock = clock
        self._recorder = recorder
        self._slots: dict[str, _Slot] = {}
        self._starting = 0
        self._waiters: deque[asyncio.Future[_Slot]] = deque()
        # When each waiting invocation gives up, watched by one timer armed for the earliest
        # (a timer per waiter cost the queued path 2-3 µs to make and cancel).
        self._waiter_due: dict[asyncio.Future[_Slot], float] = {}
        self._expired: set[asyncio.Future[_Slot]] = set()  # cancelled by their deadline
        self._queue_timer: Timer | None = None
        self._queue_timer_due = 0.0
        self._state = ScalingState()
        # The spec `decide` sees: config.scaling, with keep_alive_s set by the predictive
        # keep-alive policy when `config.scaling.hybrid` is set (see `_went_idle`).
        self._scaling = config.scaling
        self._history = IdleHistory()  # idle times, for the predictive keep-alive
        self._windows: Windows | None = None  # its windows since the function last went idle
        self._prewarm_timer: Timer | None = None
        self._closing = False
        self._held = False  # no new instances while others run: the code on disk changed
        self._failed_starts = 0
        self._retry_at_s: float | None = None  # no start without waiters before this time
        self._next_check_s: float | None = None
        self._janitor_due: float | None = None
        self._janitor_wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._janitor: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._capacity = capacity
        self._leases: dict[str, str] = {}  # instance id -> its capacity lease
        self._full_until_s: float | None = None  # other planes hold every lease until then
        self._behind = 0  # invocations sent to an instance behind the one it runs
        # Invocations handed to instances and not yet over for the pool (the sum of the
        # slots' in_flight, counting slots already gone): idle at 0 with no one waiting.
        self._running = 0
        self._retries: set[asyncio.Future[_Slot]] = set()  # waiters that were sent behind
        self._short = 0  # invocations in a row that took at most SHORT_MS
        self._batch: _Slot | None = None  # the instance this turn's invocations go to
        self._batched = 0  # invocations given to it in this turn
        self._batch_limit = 0  # how many it may take
        # The handler's recent longest run and second longest (unknown: as if this long)
        self._longest_ms = self._slow_ms = SHORT_MS
        self.stats = PoolStats()

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._backend.prepare(self.fn)
        self._janitor = asyncio.get_running_loop().create_task(self._janitor_loop())
        self._reconcile()

    def hold(self) -> None:
        """Start no more instances while some are running (hot reload): the code on disk has
        changed, and a new instance would import it, broken or not. Invocations wait for the
        running instances instead; a pool with none left still starts one."""
        self._held = True

    async def drain(self) -> None:
        """Refuse new invocations and wait until every accepted one has finished."""
        self._closing = True
        await self._idle.wait()

    async def close(self) -> None:
        self._closing = True
        self._cancel_prewarm()
        if self._queue_timer is not None:
            self._queue_timer.cancel()
            self._queue_timer = None
        if self._janitor is not None:
            self._janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._janitor
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ShuttingDown("the platform is shutting down"))
        self._waiters.clear()
        slots = list(self._slots.values())
        self._slots.clear()
        await asyncio.gather(*(s.instance.stop(1.0) for s in slots), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()

    # -- observation ----------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """Its name in the invoker: the function id, plus `:N` for deployed version N."""
        return pool_key(self.fn.id, self.fn.version)

    @property
    def live(self) -> int:
        return len(self._slots)

    @property
    def busy(self) -> int:
        return sum(1 for s in self._slots.values() if s.in_flight)

    @property
    def in_flight(self) -> int:
        """Invocations running (not those waiting inside an instance, which are `queued`)."""
        most = self.fn.concurrency
        return sum(min(s.in_flight, most) for s in self._slots.values())

    @property
    def queued(self) -> int:
        """Invocations waiting: for a free instance, or inside one behind its current one."""
        return len(self._waiters) + self._behind

    @property
    def queued_behind(self) -> int:
        """Of `queued`, those sent to an instance behind the invocation it runs."""
        return self._behind

    @property
    def starting(self) -> int:
        return self._starting

    def placement(self) -> list[dict[str, Any]]:
        """Each live instance with the cluster node it runs on (none on the local backend)."""
        return [
            {"instance": iid, "pid": s.instance.pid, "busy": s.in_flight, **s.instance.node}
            for iid, s in self._slots.items()
            if s.instance.node is not None
        ]

    # -- invoking -------------------------------------------------------------------------------
    async def invoke(self, request: InvocationRequest) -> InvocationOutcome:
        span = invocation_span(request.traceparent)
        request.traceparent = span.traceparent  # the context the function passes on
        recorder = self._recorder
        retry = False
        while True:
            try:
                slot = await self._acquire(request.request_id, retry=retry)
            except Throttled:
                if recorder is not None:
                    recorder.invocation(self._throttled(request, span))
                raise
            cold = slot.served == 0 and not slot.prewarmed
            slot.served += 1
            self.stats.invocations += 1
            try:
                if recorder is None:
                    return await self._run(slot, request, cold)
                return await self._run_recorded(slot, request, cold, recorder, span)
            except NotStarted:
                self.stats.invocations -= 1
                retry = True  # its instance died before it began: it runs on another

    async def _run(self, slot: _Slot, request: InvocationRequest, cold: bool) -> InvocationOutcome:
        """One invocation on `slot`, unrecorded."""
        instance = slot.instance
        status = "cancelled"
        started = self._clock.monotonic()
        try:
            result = await instance.invoke(request)
            self._note_run(result.run_ms)
            status = "ok"  # its instance survived it (the handler may still have failed)
        except NotStarted:
            status = "not_started"
            raise
        except InvocationError as exc:
            self.stats.errors += 1
            status = _STATUS.get(type(exc), "error")
            raise
        finally:
            self._finish(slot, started, request, status)
        if not result.ok:
            self.stats.errors += 1
        return InvocationOutcome(
            result, instance.iid, cold, instance.init_ms if cold else 0.0, self.fn.version
        )

    async def _run_recorded(
        self,
        slot: _Slot,
        request: InvocationRequest,
        cold: bool,
        recorder: Recorder,
        span: InvocationSpan,
    ) -> InvocationOutcome:
        """`_run`, plus the invocation's record and its output lines for the recorder."""
        fid, rid, instance = self.fn.id, request.request_id, slot.instance
        echo = request.on_log
        request.on_log = partial(recorder.output, echo, fid, rid, instance.iid)
        status, error_type, max_memory = "cancelled", None, None
        start_ms = int(self._clock.wall() * 1000)  # when the instance was handed the work
        started = self._clock.monotonic()
        try:
            result = await instance.invoke(request)
            self._note_run(result.run_ms)
            max_memory = result.max_memory_mb
            status = "ok"
            if not result.ok:
                self.stats.errors += 1
                status = "error"
                value = result.value if isinstance(result.value, dict) else {}
                error_type = str(value.get("errorType", "Unhandled"))
        except NotStarted:
            status = "not_started"
            request.on_log = echo  # the next attempt wraps it for its own instance
            raise
        except InvocationError as exc:
            self.stats.errors += 1
            status, error_type = _STATUS.get(type(exc), "error"), exc.error_type
            raise
        finally:
            duration_ms = self._finish(slot, started, request, status)
            if status != "not_started":
                recorder.invocation_row(  # an InvocationRow: this record as the store inserts it
                    (
                        rid,
                        fid,
                        request.trigger,
                        start_ms + int(request.queued_ms),
                        duration_ms,
                        math.ceil(duration_ms) or 1,  # billed: whole ms, at least 1
                        float(instance.init_ms) if cold else None,
                        cold,
                        self.fn.memory_mb,
                        max_memory,
                        status,
                        error_type,
                        instance.iid,
                        span.trace_id,
                        span.span_id,
                        span.parent_span_id,
                        self.fn.version,
                    )
                )
        return InvocationOutcome(
            result, instance.iid, cold, instance.init_ms if cold else 0.0, self.fn.version
        )

    def _throttled(self, request: InvocationRequest, span: InvocationSpan) -> InvocationRecord:
        """The record of an invocation throttled before it ran."""
        return InvocationRecord(
            request.request_id,
            self.fn.id,
            request.trigger,
            int(self._clock.wall() * 1000),
            0.0,
            0,
            None,
            False,
            self.fn.memory_mb,
            None,
            "throttled",
            "TooManyRequestsException",
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_span_id=span.parent_span_id,
            version=self.fn.version,
        )

    def _finish(
        self, slot: _Slot, started_s: float, request: InvocationRequest, status: str
    ) -> float:
        """An invocation handed to `slot` at `started_s` is over for the pool, as `status`
        says (`cancelled`: its caller gave up, the instance may still run it): free its
        place, count it toward the short streak, and return how long it ran."""
        self._release(slot, ended=status != "cancelled")
        duration_ms = self._ran_ms(started_s, request.queued_ms)
        if status != "not_started":
            # ok / error: the instance survived it; timeout, crashed, ...: it did not
            self._took(duration_ms, survived=status in ("ok", "error"))
        return duration_ms

    def _ran_ms(self, sent_s: float, queued_ms: float) -> float:
        """How long an invocation sent at `sent_s` ran: from its start, which for one sent
        behind another came `queued_ms` later. (The wait is the executor's real time: under a
        test's fake clock it may be longer than all the time that passed.)"""
        return max(0.0, (self._clock.monotonic() - sent_s) * 1000 - queued_ms)

    def _took(self, duration_ms: float, survived: bool) -> None:
        """An invocation ended after running `duration_ms`, its instance alive after it or
        not (a crash, a timeout, the memory limit): count the short ones in a row that left
        their instance running."""
        self._short = self._short + 1 if survived and duration_ms <= SHORT_MS else 0

    async def _acquire(self, request_id: str, retry: bool = False) -> _Slot:
        """A slot for the invocation: at once, or after waiting in the queue. A `retry` (sent
        behind an invocation on an instance that died before it could start) was accepted
        already: it is neither refused for shutdown nor throttled, waits at the head of the
        queue, and is not sent behind another again."""
        if self._closing and not retry:
            raise ShuttingDown("the platform is shutting down; not accepting new invocations")
        if self._history.idle_since_s is not None and not retry:
            self._arrived()
        slot = None
        if self._batch is not None and not retry and self._may_batch(self._batch):
            self._batched += 1
            self._take(self._batch)
            return self._batch
        if not self._waiters:
            slot = pick_instance(self._slots.values(), self.fn.concurrency)
            if slot is None and not retry and self._may_send_behind():
                slot = pick_behind(self._slots.values(), self._clock.monotonic() - _SHORT_S)
            if slot is not None and not slot.instance.alive:
                # It died idle and its exit is not handled yet: not one to send to.
                alive = (s for s in self._slots.values() if s.instance.alive)
                slot = pick_instance(alive, self.fn.concurrency)
        if slot is not None:
            self._take(slot)
            if self._batch is None and slot.instance.serial and self._short >= SHORT_STREAK:
                limit = min(BATCH, int(BATCH_BUDGET_MS / max(self._slow_ms, 1e-6)))
                if limit > 1:
                    self._batch, self._batched, self._batch_limit = slot, 1, limit
                    asyncio.get_running_loop().call_soon(self._end_batch)
            return slot
        queued = len(self._waiters) + self._behind
        if not retry and queued >= self._unstarted_slots() + self.config.max_queued:
            self.stats.throttles += 1
            raise Throttled(
                f"all {self.config.scaling.max_instances} instances are busy and "
                f"{len(self._waiters)} invocations are already waiting",
                function_id=self.fn.id,
                request_id=request_id,
            )
        waiter: asyncio.Future[_Slot] = asyncio.get_running_loop().create_future()
        if retry:
            self._waiters.appendleft(waiter)
            self._retries.add(waiter)
        else:
            self._waiters.append(waiter)
        self._idle.clear()
        wait_s = self.config.queue_timeout_s
        if self._has_room():
            # An instance can start for this invocation: waiting for its cold start is not
            # queueing, so the wait covers the init phase's limit on top of queue_timeout.
            wait_s += INIT_TIMEOUT_S
            self._reconcile()
        due = self._clock.monotonic() + wait_s
        self._waiter_due[waiter] = due
        if self._queue_timer is None or due < self._queue_timer_due:
            self._arm_queue_timer(due)
        try:
            return await waiter  # raises the start error when one was handed over
        except asyncio.CancelledError:
            if waiter not in self._expired:  # the caller went away (client disconnected, shutdown)
                self._forget_waiter(waiter)
                raise
        finally:
            del self._waiter_due[waiter]
            self._expired.discard(waiter)
            self._retries.discard(waiter)
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        self._check_idle()
        self.stats.throttles += 1
        raise Throttled(
            f"no instance became free within {self.config.queue_timeout_s:g} s",
            function_id=self.fn.id,
            request_id=request_id,
        )

    def _may_batch(self, slot: _Slot) -> bool:
        """Whether an invocation may go to `slot`, the instance an invocation started in this
        turn of the event loop went to, although another instance may be free.

        The local executor writes the frames a turn sends an instance at the end of the turn
        (`LocalInstance`), so its process reads them in one wake-up and runs them back to
        back. Sent each to a free instance, every invocation woke a process of its own: on a
        busy gateway, whose thread takes several times an instance's time per request, each
        instance had gone back to sleep before its next invocation came (0.6-0.8 wake-ups
        per request, even with two instances for 32 connections), and waking and putting it
        to sleep cost the instance three quarters of its CPU per invocation. Batched, 0.1
        wake-ups per request, and the machine served more requests/s (docs/benchmarks.md).
        Only for a function whose recent invocations were all short, as for sending behind
        (`_may_send_behind`), and within `max_queued` (0 turns it off). A batch holds at most
        BATCH invocations, and no more than BATCH_BUDGET_MS of the handler's recent runs
        (the second longest, `_note_run`): an invocation waits for at most that long behind
        the others, as long as they run as the recent ones did (a 0.5 ms handler is batched
        four at a time, one of 1 ms two, a longer one not at all). One that runs far longer
        than the recent ones holds those behind it until it ends, or until its timeout kills
        the instance (then they run elsewhere)."""
        return (
            self._batched < self._batch_limit
            and self._behind < self.config.max_queued  # max_queued 0: never wait behind
            and not self._waiters
            and self._short >= SHORT_STREAK
            and slot.instance.alive
            and self._slots.get(slot.instance.iid) is slot
        )

    def _end_batch(self) -> None:
        self._batch = None

    def _note_run(self, run_ms: float | None) -> None:
        """An instance ran the handler for `run_ms` (None: it did not say). The batches' limit
        follows the second longest of the recent runs, each of the two longest decaying: one
        run far longer than the others does not cut the batches, a second does at once, and
        both are forgotten over some tens of shorter ones. A lone long run is most often the
        machine's, not the handler's: an instance preempted on busy cores (a hello handler
        that takes 5 µs measured 26 ms at most under load, and over 0.25 ms, which would have
        halved its batches, once in a few hundred runs)."""
        if run_ms is not None:
            longest, second = self._longest_ms * _SLOW_DECAY, self._slow_ms * _SLOW_DECAY
            if run_ms > longest:
                longest, second = run_ms, longest
            elif run_ms > second:
                second = run_ms
            self._longest_ms, self._slow_ms = longest, second

    def _arm_queue_timer(self, due: float) -> None:
        if self._queue_timer is not None:
            self._queue_timer.cancel()
        self._queue_timer_due = due
        self._queue_timer = self._clock.call_later(
            due - self._clock.monotonic(), self._expire_waiters
        )

    def _expire_waiters(self) -> None:
        """The earliest deadline came: cancel the waiters whose wait is over (their `_acquire`
        throttles them), and watch for the next deadline."""
        self._queue_timer = None
        now = self._clock.monotonic()
        # What the timer was armed for is due, even if it fired a fraction early (the loop's
        # timers count milliseconds) or `due` came out a float step past the millisecond.
        limit = max(now, self._queue_timer_due)
        left = []
        for waiter, due in self._waiter_due.items():
            if waiter.done():
                continue
            if due <= limit:
                self._expired.add(waiter)
                waiter.cancel()
            else:
                left.append(due)
        if left:
            self._arm_queue_timer(min(left))

    def _may_send_behind(self) -> bool:
        """Whether an invocation that finds no free instance may be sent behind one an
        instance runs: the function's invocations are short, no more instances can start, and
        `max_queued` has room.

        That invocation begins the moment the one before it ends, instead of after the platform
        has heard of the end and sent it (on a busy gateway that round trip is most of an
        instance's time), and the instance's process is never put to sleep and woken in
        between. Behind a short invocation it waits about as long as it would have for a free
        instance; an invocation that turns out long holds the one behind it (never more than
        one) until it ends, or until its timeout kills the instance and the one behind runs
        elsewhere.
        """
        return (
            self._short >= SHORT_STREAK
            and self._behind < self.config.max_queued
            and not self._has_room()
        )

    def _has_room(self) -> bool:
        """Whether max_instances still allows starting an instance (else nothing to decide)."""
        return (
            self._starting + len(self._slots) < self.config.scaling.max_instances
            and not self._full()
        )

    def _full(self) -> bool:
        """Whether other planes held every lease at the last try, a short while ago."""
        return self._full_until_s is not None and self._clock.monotonic() < self._full_until_s

    def _forget_waiter(self, waiter: asyncio.Future[_Slot]) -> None:
        """A waiting caller gave up: give back a slot it was handed but never used."""
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self._release(waiter.result())
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        self._check_idle()

    def _unstarted_slots(self) -> int:
        """Slots that instances still to start (or starting) will bring, up to max_instances.

        Invocations waiting for those are cold starts, not queued: with max_instances 2,
        concurrency 1, one ready instance and max_queued 0, one more invocation may wait for
        the second instance to start and a third is throttled.
        """
        return max(0, self.config.scaling.max_instances - len(self._slots)) * self.fn.concurrency

    def _take(self, slot: _Slot) -> None:
        self._running += 1
        slot.in_flight += 1
        if slot.in_flight > self.fn.concurrency:
            self._behind += 1  # sent behind the one it runs; starts when that one ends
        else:
            slot.last_used_s = self._clock.monotonic()
        slot.idle_since_s = None
        self._idle.clear()

    def _release(self, slot: _Slot, ended: bool = False) -> None:
        """An invocation on `slot` is over for the pool: it `ended` on the instance, or its
        caller gave up on it (cancelled: the instance may still be running it)."""
        if slot.in_flight > self.fn.concurrency:
            self._behind -= 1
            if ended:
                slot.last_used_s = self._clock.monotonic()  # the one sent behind starts now
        self._running -= 1
        slot.in_flight -= 1
        alive = slot.instance.alive and self._slots.get(slot.instance.iid) is slot
        if alive:
            self._hand_over(slot)
        became_idle = alive and slot.in_flight == 0
        if became_idle:
            slot.idle_since_s = self._clock.monotonic()
            if self._janitor_due is None:
                self._janitor_wake.set()
        self._check_idle()
        if self._scaling.hybrid is not None and self._idle.is_set() and not self._closing:
            self._went_idle()
        if not alive or (became_idle and self._scaling.keep_alive_s == 0):
            self._reconcile()
        elif (
            self._waiters and self._starting + len(self._slots) < self.config.scaling.max_instances
        ):
            self._reconcile()  # room to start more for the waiting invocations

    def _hand_over(self, slot: _Slot) -> None:
        """Give free capacity on `slot` to waiting invocations, oldest first."""
        while self._waiters and (
            slot.in_flight < self.fn.concurrency
            or (
                self._waiters[0] not in self._retries
                and self._may_send_behind()
                and can_send_behind(slot, self._clock.monotonic() - _SHORT_S)
            )
        ):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take(slot)
                waiter.set_result(slot)

    def _check_idle(self) -> None:
        if not self._waiters and not self._running:
            self._idle.set()

    # -- scaling ----------------------------------------------------------------------------------
    def _snapshot(self) -> PoolSnapshot:
        return PoolSnapshot(
            now_s=self._clock.monotonic(),
            starting=self._starting,
            queued=len(self._waiters),
            instances={
                iid: InstanceView(s.in_flight, s.idle_since_s, s.started_s)
                for iid, s in self._slots.items()
            },
        )

    def _reconcile(self) -> None:
        if self._closing and not self._waiters:
            return
        decision, self._state = decide(self._snapshot(), self._scaling, self._state)
        self._apply(decision)

    def _apply(self, decision: Decision) -> None:
        if decision.reason:
            log.info(
                "scaling",
                extra={
                    "function_id": self.fn.id,
                    "reason": decision.reason,
                    "live": len(self._slots),
                },
            )
        for iid in decision.stop:
            slot = self._slots.pop(iid, None)
            if slot is not None:
                self._spawn(slot.instance.stop(2.0))
        start = decision.start if not (self._held and self._slots) else 0
        backing_off = self._retry_at_s is not None and self._clock.monotonic() < self._retry_at_s
        if start and not self._waiters and backing_off:
            start = 0  # min_instances after a failed start: retried with backoff
        if self._full():
            start = 0  # the janitor asks for a lease again at _full_until_s
        for _ in range(start):
            self._starting += 1
            self._spawn(self._start_one())
        self._next_check_s = decision.next_check_s
        if self._next_check_s is not None and (
            self._janitor_due is None or self._next_check_s < self._janitor_due
        ):
            self._janitor_wake.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _launch(self, *, beyond_limit: bool = False) -> Instance | None:
        """A started instance, holding a lease when planes share max_instances (see
        `lamina.invoker.capacity`); None when the other planes hold every lease, unless
        `beyond_limit` (a prewarm: outside the policy) starts it without one."""
        if self._capacity is None:
            return await self._backend.start_instance(self.fn, self._on_exit)
        lease = await self._capacity.acquire(self.fn.id, self.config.scaling.max_instances)
        if lease is None:
            if beyond_limit:
                return await self._backend.start_instance(self.fn, self._on_exit)
            return None
        try:
            instance = await self._backend.start_instance(self.fn, self._on_exit)
        except BaseException:
            self._capacity.release(lease)
            raise
        self._leases[instance.iid] = lease
        return instance

    def _capacity_full(self) -> None:
        """Start nothing for a while. Waiters wait for this plane's instances or a lease freed
        elsewhere (asked for again soon) up to their queue_timeout; with no instance here
        to wait for, they are throttled at once, as Lambda throttles at its limit."""
        if not self._full_until_s:
            log.info(
                "max_instances reached across control planes",
                extra={"function_id": self.fn.id, "live": len(self._slots)},
            )
        self._full_until_s = self._clock.monotonic() + _FULL_RETRY_S[0 if self._waiters else 1]
        if not self._slots and not self._starting:
            limit = self.config.scaling.max_instances
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    self.stats.throttles += 1
                    waiter.set_exception(
                        Throttled(
                            f"max_instances ({limit}) are running on other control planes",
                            function_id=self.fn.id,
                        )
                    )
            self._check_idle()
        self._janitor_wake.set()

    async def _start_one(self, prewarmed: bool = False) -> None:
        try:
            instance = await self._launch()
        except (InitError, PlatformError) as exc:
            self._starting -= 1
            self._failed_starts += 1
            backoff = _RETRY_START_S[min(self._failed_starts, len(_RETRY_START_S)) - 1]
            self._retry_at_s = self._clock.monotonic() + backoff
            log.warning(
                "instance failed to start",
                extra={"function_id": self.fn.id, "error": str(exc)},
            )
            self._fail_oldest_waiter(exc)
            self._reconcile()
            self._janitor_wake.set()
            return
        except asyncio.CancelledError:
            self._starting -= 1
            raise
        self._starting -= 1
        if instance is None:
            self._capacity_full()
            return
        self._add_started(instance, prewarmed)

    async def prewarm(self) -> None:
        """Start one instance now, outside the scaling policy (and, when planes share
        max_instances, without a lease if none is free), and keep it for the next invocation.
        Raises InitError when the code cannot load: a hot reload checks new code this way
        before switching to it, and its first request is then served warm."""
        self._starting += 1
        try:
            instance = await self._launch(beyond_limit=True)
        finally:
            self._starting -= 1
        assert instance is not None
        self._add_started(instance)

    def _add_started(self, instance: Instance, prewarmed: bool = False) -> None:
        self._failed_starts = 0
        self._retry_at_s = None
        self._full_until_s = None
        self.stats.cold_starts += 1
        now = self._clock.monotonic()
        slot = _Slot(
            instance,
            now,
            idle_since_s=now,
            last_used_s=now,
            prewarmed=prewarmed,
            in_order=instance.serial and self.fn.concurrency == 1,
        )
        if self._closing and not self._waiters:
            self._spawn(instance.stop(1.0))
            return
        self._slots[instance.iid] = slot
        log.info(
            "instance started",
            extra={
                "function_id": self.fn.id,
                "instance": instance.iid,
                "init_ms": round(instance.init_ms, 2),
            },
        )
        self._hand_over(slot)
        if slot.in_flight:
            slot.idle_since_s = None
        self._reconcile()

    def _fail_oldest_waiter(self, exc: BaseException) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)
                break
        self._check_idle()

    def _on_exit(self, instance: Instance) -> None:
        lease = self._leases.pop(instance.iid, None)
        if lease is not None and self._capacity is not None:
            self._capacity.release(lease)
        slot = self._slots.pop(instance.iid, None)
        if slot is not None:
            log.info(
                "instance stopped", extra={"function_id": self.fn.id, "instance": instance.iid}
            )
            self._check_idle()
            if not self._closing:
                self._reconcile()

    async def _janitor_loop(self) -> None:
        """Re-decide when a keep-alive expires or a failed start is due for a retry."""
        while True:
            scaling = self._scaling
            due = self._next_check_s
            if (
                due is None
                and scaling.keep_alive_s > 0
                and len(self._slots) > scaling.min_instances
            ):
                # Busy instances may turn idle; none can expire before a full keep-alive from now,
                # so look again then instead of being woken by every release.
                due = self._clock.monotonic() + scaling.keep_alive_s
            for retry in (self._retry_at_s, self._full_until_s):
                if retry is not None:
                    due = retry if due is None else min(due, retry)
            self._janitor_due = due
            timer = None
            if due is not None:
                timer = self._clock.call_later(
                    due - self._clock.monotonic(), self._janitor_wake.set
                )
            try:
                await self._janitor_wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()
            self._janitor_due = None
            if not self._closing:
                self._reconcile()
            # Cleared after reconciling: the loop recomputes its deadline from the new decision.
            self._janitor_wake.clear()

    # -- predictive keep-alive (config.scaling.hybrid) -------------------------------------------
    def _arrived(self) -> None:
        """An invocation arrives at an idle function: the policy learns the idle time, and a
        pending pre-warm is no longer needed."""
        hybrid = self._scaling.hybrid
        assert hybrid is not None
        self._history = on_arrival(self._history, self._clock.monotonic(), hybrid)
        self._cancel_prewarm()
        if self._windows is not None:
            self._keep_alive(self._windows.after_use_s)

    def _went_idle(self) -> None:
        """Nothing runs or waits: apply the policy's windows. Without a pre-warm window the idle
        instances are kept for the keep-alive window; with one they go now, and one instance
        is started when the pre-warm window ends (`_prewarm_due`)."""
        hybrid = self._scaling.hybrid
        assert hybrid is not None
        if self._history.idle_since_s is not None:
            return  # already idle (an instance that was never used went away)
        self._history, windows = on_idle(self._history, self._clock.monotonic(), hybrid)
        self._windows = windows
        self._keep_alive(windows.after_use_s)
        log.debug(
            "keep-alive windows",
            extra={
                "function_id": self.fn.id,
                "prewarm_s": round(windows.prewarm_s, 3),
                "keep_alive_s": round(windows.keep_alive_s, 3),
                "reason": windows.reason,
            },
        )
        if windows.prewarm_s > 0:
            self._prewarm_timer = self._clock.call_later(windows.prewarm_s, self._prewarm_due)
        self._janitor_wake.set()

    def _prewarm_due(self) -> None:
        """The pre-warm window has passed with no invocation: start one instance, to be kept
        for the keep-alive window."""
        self._prewarm_timer = None
        if self._closing or self._windows is None or self._history.idle_since_s is None:
            return
        self._keep_alive(self._windows.keep_alive_s)
        if self._starting == 0 and not self._slots and self._windows.keep_alive_s > 0:
            log.info("pre-warming", extra={"function_id": self.fn.id})
            self._starting += 1
            self._spawn(self._start_one(prewarmed=True))
        self._janitor_wake.set()

    def _keep_alive(self, seconds: float) -> None:
        if seconds != self._scaling.keep_alive_s:
            self._scaling = replace(self._scaling, keep_alive_s=seconds)

    def _cancel_prewarm(self) -> None:
        if self._prewarm_timer is not None:
            self._prewarm_timer.cancel()
            self._prewarm_timer = None
