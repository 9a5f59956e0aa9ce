"""The shared delivery loop: lease messages from store queues, hand them to a delivery coroutine
in batches, keep their leases alive while it runs, and stop with a grace period.

Mechanism only. What a delivery does with its messages (acknowledge, release for a retry, move
to a dead-letter queue) is up to the source's `deliver` coroutine; the consumer decides how many
messages to lease (free capacity times batch size), groups them into batches (batch size, batch
window) and keeps their leases alive. Async invocations, queue triggers and topic subscriptions
all run on it.

Leases and heartbeats. Messages are claimed with a lease of `lease_s`. While a message is held
(gathered into a batch, or being delivered), a heartbeat per source extends its lease to
`now + lease_s` every `lease_s / 3`, so a delivery may take as long as it needs, and when the
process dies its messages become visible again at most `lease_s` after the last heartbeat. A
delivery that raises leaves its messages leased: they come back when their lease runs out.
A heartbeat that cannot reach the store in time lets a lease lapse; the message may then be
delivered twice (at least once, never lost).

Waking. A source's loop sleeps until `wake(queue)` (a local enqueue), a delivery of its own
finishing (capacity freed), or `poll_s` on the clock (messages that other processes enqueued,
and delays and retries that became due).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lamina.clock import Clock
from lamina.store.types import Message, Store

__all__ = ["Consumer", "Deliver", "Source"]

log = logging.getLogger(__name__)

_CLAIMS_PER_ROUND = 10  # batches leased per store round trip at most

# Settles every message it is given (ack, release or move); may take as long as it needs.
Deliver = Callable[[Sequence[Message]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Source:
    """One store queue and how to deliver its messages."""

    queue: str  # the store queue to lease from, e.g. `queue:jobs`
    deliver: Deliver
    capacity: int  # deliveries in progress at once, >= 1
    lease_s: float  # lease per claim and per heartbeat, > 0
    batch_size: int = 1  # messages per delivery, 1..100
    batch_window_s: float = 0.0  # s to wait for a full batch after its first message, >= 0
    label: str = ""  # for logs, e.g. the function id

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.batch_size < 1:
            raise ValueError(
                f"source {self.queue!r}: capacity and batch_size must be >= 1,"
                f" got {self.capacity} and {self.batch_size}"
            )
        if self.lease_s <= 0 or self.batch_window_s < 0:
            raise ValueError(
                f"source {self.queue!r}: lease_s must be > 0 and batch_window_s >= 0,"
                f" got {self.lease_s} and {self.batch_window_s}"
            )


@dataclass(slots=True, eq=False)
class _State:
    source: Source
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0  # deliveries running
    # message id -> (lease token, when its lease was last set, epoch ms)
    held: dict[str, tuple[str, int]] = field(default_factory=dict)
    gathering: list[Message] = field(default_factory=list)  # a batch waiting to fill up
    sleeping: bool = False  # the loop waits for a wake-up or its timer


class Consumer:
    """Runs the sources' loops and heartbeats until `stop()`; constructing it starts nothing."""

    def __init__(
        self, store: Store, clock: Clock, sources: Sequence[Source], *, poll_s: float = 1.0
    ) -> None:
        self._store = store
        self._clock = clock
        self._poll_s = poll_s
        self._states = [_State(s) for s in sources]
        self._loops: list[asyncio.Task[None]] = []
        self._heartbeats: list[asyncio.Task[None]] = []
        self._deliveries: set[asyncio.Task[None]] = set()
        self._stopping = False

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    def wake(self, queue: str) -> None:
        """Look at `queue` now (a message was just enqueued there by this process)."""
        for state in self._states:
            if state.source.queue == queue:
                state.wake.set()

    def in_flight(self, queue: str) -> int:
        """Deliveries of `queue`'s messages running now."""
        return sum(s.in_flight for s in self._states if s.source.queue == queue)

    def held(self, queue: str) -> int:
        """Messages of `queue` this consumer holds a lease on now."""
        return sum(len(s.held) for s in self._states if s.source.queue == queue)

    def idle(self) -> bool:
        """No delivery runs and every source's loop is asleep with no wake-up pending: nothing
        happens until time moves or a message is enqueued here (tests wait for this)."""
        return not self._deliveries and all(
            s.sleeping and not s.wake.is_set() for s in self._states
        )

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for state in self._states:
            self._loops.append(loop.create_task(self._run(state)))
            self._heartbeats.append(loop.create_task(self._heartbeat(state)))

    async def stop(self, grace_s: float) -> None:
        """Stop leasing; let deliveries in progress finish within `grace_s`, then cancel them.
        Messages gathered but not yet delivered are released at once; messages of cancelled
        deliveries stay leased and come back when their lease ends (at least once)."""
        self._stopping = True
        for state in self._states:
            state.wake.set()
        if self._loops:
            _done, pending = await asyncio.wait(self._loops, timeout=max(0.0, grace_s))
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._loops, return_exceptions=True)
        if self._deliveries:
            _done, cut = await asyncio.wait(set(self._deliveries), timeout=max(0.0, grace_s))
            for task in cut:
                task.cancel()
            if cut:
                log.warning("deliveries cut short at shutdown", extra={"deliveries": len(cut)})
                await asyncio.gather(*cut, return_exceptions=True)
        for task in self._heartbeats:
            task.cancel()
        await asyncio.gather(*self._heartbeats, return_exceptions=True)
        self._loops.clear()
        self._heartbeats.clear()

    # -- the loop of one source ------------------------------------------------------------------
    async def _run(self, state: _State) -> None:
        source = state.source
        while not self._stopping:
            free = source.capacity - state.in_flight
            messages: list[Message] = []
            if free > 0:
                limit = source.batch_size * min(free, _CLAIMS_PER_ROUND)
                messages = await self._claim(state, limit)
            if self._stopping:
                await self._release(state, messages)
                return
            if not messages:
                await self._sleep(state, self._poll_s)
                continue
            batches = [
                messages[i : i + source.batch_size]
                for i in range(0, len(messages), source.batch_size)
            ]
            if source.batch_window_s > 0 and len(batches[-1]) < source.batch_size:
                state.gathering = batches.pop()
                for batch in batches:
                    self._dispatch(state, batch)
                batches = [await self._fill(state)]
                if self._stopping:
                    await self._release(state, batches[0])
                    return
            for batch in batches:
                self._dispatch(state, batch)

    async def _fill(self, state: _State) -> list[Message]:
        """Wait up to the batch window for `state.gathering` to fill up; returns the batch."""
        source = state.source
        batch = state.gathering
        deadline = self._clock.monotonic() + source.batch_window_s
        while len(batch) < source.batch_size and not self._stopping:
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                break
            await self._sleep(state, min(remaining, self._poll_s))
            if not self._stopping:
                batch.extend(await self._claim(state, source.batch_size - len(batch)))
        state.gathering = []
        return batch

    async def _claim(self, state: _State, limit: int) -> list[Message]:
        source = state.source
        try:
            messages = await self._store.claim(
                source.queue,
                max_messages=limit,
                lease_ms=round(source.lease_s * 1000),
                now_ms=self._now_ms(),
            )
        except Exception:
            log.exception("claiming messages failed", extra=_where(source))
            return []
        now_ms = self._now_ms()
        for message in messages:
            state.held[message.id] = (message.lease_token or "", now_ms)
        return messages

    async def _sleep(self, state: _State, seconds: float) -> None:
        timer = self._clock.call_later(seconds, state.wake.set)
        state.sleeping = True
        try:
            await state.wake.wait()
        finally:
            state.sleeping = False
            timer.cancel()
        state.wake.clear()

    async def _release(self, state: _State, messages: Sequence[Message]) -> None:
        """Give back messages that were leased but never delivered (shutdown)."""
        for message in messages:
            state.held.pop(message.id, None)
            try:
                await self._store.release(
                    state.source.queue,
                    message.id,
                    message.lease_token or "",
                    delay_ms=0,
                    now_ms=self._now_ms(),
                )
            except Exception:
                log.exception("releasing a message at shutdown failed", extra=_where(state.source))

    # -- deliveries ------------------------------------------------------------------------------
    def _dispatch(self, state: _State, batch: Sequence[Message]) -> None:
        state.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._deliver(state, batch))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, state: _State, batch: Sequence[Message]) -> None:
        try:
            await state.source.deliver(batch)
        except Exception:
            log.exception(
                "delivery failed; its messages come back when their lease ends",
                extra={**_where(state.source), "messages": len(batch)},
            )
        finally:
            state.in_flight -= 1
            for message in batch:
                state.held.pop(message.id, None)
            state.wake.set()

    async def _heartbeat(self, state: _State) -> None:
        """Every lease/3, extend the lease of every message this source holds."""
        source = state.source
        lease_ms = round(source.lease_s * 1000)
        tick = asyncio.Event()
        timer = self._clock.call_later(source.lease_s / 3, tick.set)
        try:
            while True:
                await tick.wait()
                tick.clear()
                # Armed before the store calls, so their latency does not delay the next beat.
                timer = self._clock.call_later(source.lease_s / 3, tick.set)
                await self._extend(state, lease_ms)
        finally:
            timer.cancel()

    async def _extend(self, state: _State, lease_ms: int) -> None:
        """Extend the held leases set more than half a beat ago. A younger one has at least
        `lease - 1.5 beats = lease / 2` left at the next beat, so short deliveries cost no
        store writes at all."""
        source = state.source
        now_ms = self._now_ms()
        young_ms = lease_ms // 6
        for message_id, (token, set_ms) in list(state.held.items()):
            if now_ms - set_ms < young_ms:
                continue
            try:
                kept = await self._store.extend(
                    source.queue, message_id, token, lease_ms=lease_ms, now_ms=now_ms
                )
            except Exception:
                log.exception("extending leases failed", extra=_where(source))
                return
            if message_id not in state.held or state.held[message_id][0] != token:
                continue  # settled meanwhile
            if kept:
                state.held[message_id] = (token, now_ms)
            else:
                # Settled a moment ago, or the lease lapsed and another consumer has it.
                state.held.pop(message_id, None)


def _where(source: Source) -> dict[str, str]:
    return {"queue": source.queue, "function_id": source.label}


def dead_letter_queue(queue: str) -> str:
    """Where events of `queue` go after their last attempt: `dlq:<queue>`."""
    return f"dlq:{queue}"


async def move_to_dead_letters(
    store: Store, message: Message, error: Mapping[str, Any], *, now_ms: int
) -> bool:
    """Move a leased message to its dead-letter queue with the last error; False if the
    lease was lost meanwhile (another consumer has it now)."""
    return await store.move(
        message.queue,
        message.id,
        message.lease_token or "",
        to_queue=dead_letter_queue(message.queue),
        now_ms=now_ms,
        error=error,
    )
