"""Queue triggers: durable queues whose messages reach a function as SQS batch events.

`Queues.send` stores a message in `queue:<name>` (1 MiB at most, optional attributes and a delay
up to 900 s); one consumer per `queue` trigger leases up to `batch_size` messages, waiting up to
`batch_window` seconds after the first one for the batch to fill, and invokes the function with
an SQS event (`shapes.sqs_event`). Then, as an SQS event source mapping does:
- success acknowledges (deletes) the whole batch;
- a result `{"batchItemFailures": [{"itemIdentifier": id}, ...]}` acknowledges every message
  but those; an identifier that is empty or not in the batch fails the whole batch, as on AWS;
- a function error, timeout or crash fails the whole batch.
A failed message becomes visible again when its visibility timeout, counted from when it was
received, ends (at once if the handler ran longer than that). After `max_receive_count` failed
receives it moves to `dlq:queue:<name>` with the last error; a message received more often than
that (its consumers died mid-delivery) moves there without being delivered again.

Visibility timeout. It is the lease of a received message, but while the handler runs the
consumer's heartbeat keeps extending it (to `now + visibility_timeout`, every third of it). So
unlike SQS, a handler slower than the visibility timeout never sees its messages delivered a
second time in parallel; the function's own timeout bounds the run instead. If the platform
dies, its messages are visible again at most one visibility timeout after the last heartbeat.

Request ids. Every invocation (every batch, retries included) gets a fresh request id, as AWS
gives each batch invocation its own; the idempotency key is each record's `messageId`, which
stays the same across receives. `receiptHandle` is the lease token of this receive.

One consumer per queue is the intended use. If several functions name the same queue, they
compete: each message goes to one of them.

Tracing: the sender's `traceparent` is kept in the message's system attributes and shown to the
function as the record's `attributes.AWSTraceHeader` (X-Ray form), as SQS does. A batch's
invocation is a child of the first traced message's span (one span has one parent).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lamina.clock import Clock
from lamina.errors import (
    InvalidMessage,
    InvocationError,
    PayloadTooLarge,
    QueueNotFound,
    ShuttingDown,
    Throttled,
)
from lamina.events._attributes import MAX_MESSAGE_BYTES, decode_attributes, encode_attributes
from lamina.events.async_invoke import THROTTLED_RETRY_MS, Invoke, error_of
from lamina.events.consumer import Consumer, Source, dead_letter_queue, move_to_dead_letters
from lamina.events.shapes import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, SqsRecord, sqs_event
from lamina.executor import InvocationRequest
from lamina.invoker.aliases import qualified
from lamina.manifest import AppSpec, FunctionSpec
from lamina.manifest.models import QueueTrigger
from lamina.store.types import Message, NewMessage, Store
from lamina.telemetry import FunctionOutput
from lamina.telemetry.tracing import parse_traceparent, xray_header

__all__ = ["MAX_DELAY_S", "QueueTarget", "Queues", "queue_store_name", "queue_targets"]

log = logging.getLogger(__name__)

MAX_DELAY_S = 900.0  # SQS's DelaySeconds limit


def queue_store_name(queue: str) -> str:
    """The store queue behind queue `queue`."""
    return f"queue:{queue}"


@dataclass(frozen=True, slots=True)
class QueueTarget:
    """One `queue` trigger: which function consumes which queue, and how."""

    queue: str  # the queue's name, e.g. `jobs`
    function_id: str
    batch_size: int = 10  # messages per invocation, 1..100
    batch_window_s: float = 0.0  # s to wait for a full batch after the first message, 0..300
    visibility_timeout_s: float = 30.0  # lease of a received message, > 0
    max_receive_count: int = 5  # failed receives before the dead-letter queue, >= 1
    capacity: int = 10  # batches in progress at once: max_instances * concurrency
    alias: str | None = None  # the function alias it invokes; None: `live`

    @classmethod
    def for_trigger(cls, fn: FunctionSpec, trigger: QueueTrigger) -> QueueTarget:
        return cls(
            queue=trigger.name,
            function_id=fn.id,
            batch_size=trigger.batch_size,
            batch_window_s=trigger.batch_window,
            visibility_timeout_s=trigger.visibility_timeout,
            max_receive_count=trigger.max_receive_count,
            capacity=fn.max_instances * fn.concurrency,
            alias=trigger.alias,
        )


def queue_targets(app: AppSpec) -> list[QueueTarget]:
    """Every `queue` trigger of `app`, in file order."""
    return [
        QueueTarget.for_trigger(fn, trigger)
        for fn in app.functions().values()
        for trigger in fn.events
        if isinstance(trigger, QueueTrigger)
    ]


class Queues:
    """The app's queues: `send` stores a message; the consumers deliver them until `stop()`."""

    def __init__(
        self,
        store: Store,
        invoke: Invoke,
        clock: Clock,
        targets: Sequence[QueueTarget],
        *,
        names: Iterable[str] = (),  # queues one may send to besides the triggers' queues
        poll_s: float = 1.0,  # how often to look for messages made due elsewhere
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        self._store = store
        self._invoke = invoke
        self._clock = clock
        self.targets = tuple(targets)
        self.names = tuple(sorted({*names, *(t.queue for t in self.targets)}))
        self._region = region
        self._account_id = account_id
        sources = [
            Source(
                queue=queue_store_name(t.queue),
                deliver=functools.partial(self._deliver, t),
                capacity=t.capacity,
                lease_s=t.visibility_timeout_s,
                batch_size=t.batch_size,
                batch_window_s=t.batch_window_s,
                label=t.function_id,
            )
            for t in self.targets
        ]
        self.consumer = Consumer(store, clock, sources, poll_s=poll_s)
        self._stopping = False
        self.delivered = 0  # messages acknowledged by this process
        self.failed = 0  # failed receives released for redelivery
        self.dead_lettered = 0

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
    ) -> Queues:
        return cls(store, invoke, clock, queue_targets(app), poll_s=poll_s, region=region)

    @property
    def dead_letter_queues(self) -> list[str]:
        """`dlq:queue:<name>` of every consumed queue (for the admin API's listing)."""
        return sorted({dead_letter_queue(queue_store_name(t.queue)) for t in self.targets})

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    # -- producing ---------------------------------------------------------------------------------
    async def send(
        self,
        queue: str,
        body: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        delay_s: float = 0,
        traceparent: str | None = None,
    ) -> str:
        """Store a message in `queue`; returns its id (the records' `messageId`). A valid
        `traceparent` (the sender's span) becomes the parent of the invocation receiving it.

        Raises QueueNotFound for a queue no trigger names, PayloadTooLarge past 1 MiB of UTF-8
        body, InvalidMessage for bad attributes or a delay outside 0..900 s."""
        if self._stopping:
            raise ShuttingDown("the platform is shutting down; not accepting messages")
        if queue not in self.names:
            raise QueueNotFound(queue, self.names)
        where = f"queue {queue!r} message"
        if not isinstance(body, str):
            raise InvalidMessage(f"{where}: body: expected a string, got {type(body).__name__}")
        data = body.encode()
        if len(data) > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(what=where, size=len(data), limit=MAX_MESSAGE_BYTES)
        if not 0 <= delay_s <= MAX_DELAY_S:
            raise InvalidMessage(f"{where}: delay: expected 0-900 seconds, got {delay_s!r}")
        stored = encode_attributes(where, attributes, arrays=False)
        system: dict[str, Any] = {"message_attributes": stored} if stored else {}
        context = parse_traceparent(traceparent)
        if context is not None:
            system["traceparent"] = context.header()
        message = NewMessage(
            queue=queue_store_name(queue),
            body=data,
            attributes=system,
            delay_ms=round(delay_s * 1000),
        )
        (message_id,) = await self._store.enqueue([message], now_ms=self._now_ms())
        if delay_s == 0:
            self.consumer.wake(message.queue)
        return message_id

    # -- consuming ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.consumer.start()

    async def stop(self, grace_s: float) -> None:
        """Stop accepting and leasing; let batches in progress finish within `grace_s`."""
        self._stopping = True
        await self.consumer.stop(grace_s)

    async def _deliver(self, target: QueueTarget, messages: Sequence[Message]) -> None:
        batch: list[Message] = []
        for message in messages:
            if message.receive_count > target.max_receive_count:
                too_many = {
                    "errorType": "MaxReceiveCountExceeded",
                    "errorMessage": f"received {message.receive_count} times; max_receive_count"
                    f" is {target.max_receive_count}",
                }
                await self._dead_letter(target, message, too_many)
            else:
                batch.append(message)
        if not batch:
            return
        fid = target.function_id
        request_id = str(uuid.uuid4())
        event = sqs_event(
            [self._record(m) for m in batch],
            queue=target.queue,
            region=self._region,
            account_id=self._account_id,
        )
        request = InvocationRequest(
            request_id,
            event,
            None,
            FunctionOutput(fid, request_id),
            trigger="queue",
            traceparent=next(
                (m.attributes["traceparent"] for m in batch if "traceparent" in m.attributes),
                None,
            ),
        )
        failed: set[str]
        error: dict[str, Any] = {}
        try:
            outcome = await self._invoke(qualified(fid, target.alias), request)
        except (Throttled, ShuttingDown):
            # Not the function's fault: try again soon.
            for message in batch:
                await self._store.release(
                    message.queue,
                    message.id,
                    message.lease_token or "",
                    delay_ms=THROTTLED_RETRY_MS,
                    now_ms=self._now_ms(),
                )
            return
        except InvocationError as exc:
            failed = {m.id for m in batch}
            error = {"errorType": exc.error_type, "errorMessage": exc.message}
        else:
            if not outcome.result.ok:
                failed = {m.id for m in batch}
                error = error_of(outcome.result.value)
            else:
                failed = _batch_item_failures(outcome.result.value, [m.id for m in batch])
                error = {
                    "errorType": "BatchItemFailure",
                    "errorMessage": "the handler reported this message in batchItemFailures",
                }
        for message in batch:
            if message.id in failed:
                await self._fail(target, message, {**error, "requestId": request_id})
            elif await self._store.ack(message.queue, message.id, message.lease_token or ""):
                self.delivered += 1

    def _record(self, message: Message) -> SqsRecord:
        return SqsRecord(
            message_id=message.id,
            receipt_handle=message.lease_token or "",
            body=message.body.decode("utf-8", errors="replace"),
            sent_timestamp_ms=message.created_ms,
            receive_count=message.receive_count,
            first_receive_timestamp_ms=message.first_received_ms or message.created_ms,
            sender_id=self._account_id,
            message_attributes=decode_attributes(message.attributes.get("message_attributes")),
            aws_trace_header=xray_header(message.attributes.get("traceparent")),
        )

    async def _fail(self, target: QueueTarget, message: Message, error: dict[str, Any]) -> None:
        error["attempt"] = message.receive_count
        if message.receive_count >= target.max_receive_count:
            await self._dead_letter(target, message, error)
            return
        # Visible again when the visibility timeout of this receive ends, as on SQS: the claim
        # set visible_ms to receive time + visibility timeout (the heartbeat extends only the
        # copy in the store).
        now = self._now_ms()
        released = await self._store.release(
            message.queue,
            message.id,
            message.lease_token or "",
            delay_ms=max(0, message.visible_ms - now),
            now_ms=now,
            error=error,
        )
        if released:
            self.failed += 1
            log.info(
                "queue message failed; it is redelivered after its visibility timeout",
                extra={
                    "function_id": target.function_id,
                    "queue": target.queue,
                    "message_id": message.id,
                    "receive_count": message.receive_count,
                    "error": error.get("errorType"),
                },
            )

    async def _dead_letter(
        self, target: QueueTarget, message: Message, error: Mapping[str, Any]
    ) -> None:
        moved = await move_to_dead_letters(self._store, message, error, now_ms=self._now_ms())
        if moved:
            self.dead_lettered += 1
            log.warning(
                "queue message dead-lettered",
                extra={
                    "function_id": target.function_id,
                    "queue": target.queue,
                    "message_id": message.id,
                    "receive_count": message.receive_count,
                    "error": error.get("errorType"),
                },
            )


def _batch_item_failures(result: Any, batch_ids: Sequence[str]) -> set[str]:
    """The ids a successful result reports as failed (AWS's partial batch response).

    No `batchItemFailures` (or an empty list, or a result that is not an object) means every
    message succeeded; an entry without an `itemIdentifier` in the batch fails the whole batch.
    """
    if not isinstance(result, Mapping):
        return set()
    failures = result.get("batchItemFailures")
    if not failures:
        return set()
    every = set(batch_ids)
    if not isinstance(failures, list):
        return every
    failed: set[str] = set()
    for entry in failures:
        item = entry.get("itemIdentifier") if isinstance(entry, Mapping) else None
        if not isinstance(item, str) or item not in every:
            return every
        failed.add(item)
    return failed
