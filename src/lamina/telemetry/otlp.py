"""OpenTelemetry export: invocation records sent as OTLP/HTTP spans to a collector.

On when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL, used as given) or
`OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL; `/v1/traces` is appended) is set, unless
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER` leaves out `otlp` (`otlp_traces_endpoint`).
The exporter itself honours the other standard variables (`OTEL_EXPORTER_OTLP_HEADERS`,
`..._TIMEOUT`, `..._COMPRESSION`, certificates) and `OTEL_RESOURCE_ATTRIBUTES`.

Each record becomes one span with the record's own trace, span and parent ids, start and end,
kind SERVER (http, invoke, schedule) or CONSUMER (event, queue, topic), status ERROR when the
invocation failed, and the OpenTelemetry FaaS attributes (`faas.invocation_id`,
`faas.trigger`, `faas.coldstart`; on the resource `service.name` = the Lamina service,
`faas.name`, `faas.max_memory`, `cloud.resource_id` = the function's ARN).

The recorder hands every flushed batch to `OtlpExporter.submit`, which only queues it; a
thread of its own converts and sends, so a slow or absent collector never blocks requests or
the store writes. The queue is bounded (batches past it are dropped and counted); export
failures are logged when they start and when they stop, never raised. opentelemetry is
imported by `start()` only, so a platform without an endpoint never loads it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from lamina.store.types import InvocationRecord, InvocationRow, invocation_from_row

__all__ = [
    "OtlpExporter",
    "faas_trigger",
    "otlp_traces_endpoint",
    "span_attributes",
]

log = logging.getLogger(__name__)

_FAAS_TRIGGER = {  # Lamina trigger -> faas.trigger (http | pubsub | datasource | timer | other)
    "http": "http",
    "invoke": "other",
    "event": "other",
    "queue": "pubsub",
    "topic": "pubsub",
    "schedule": "timer",
}
_CONSUMER_TRIGGERS = frozenset({"event", "queue", "topic"})  # work taken from a queue
_MAX_QUEUED_BATCHES = 64  # flushed batches waiting for the export thread; more are dropped
_MAX_SPANS_PER_REQUEST = 512


def otlp_traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL the standard OpenTelemetry variables name, or None (no export)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters and "otlp" not in {e.strip() for e in exporters.split(",")}:
        return None
    traces = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        return base.rstrip("/") + "/v1/traces"
    return None


def faas_trigger(trigger: str) -> str:
    """The `faas.trigger` value of a Lamina trigger."""
    return _FAAS_TRIGGER.get(trigger, "other")


def span_attributes(record: InvocationRecord) -> dict[str, Any]:
    """The span attributes of an invocation record (FaaS semantic conventions + `lamina.*`)."""
    attributes: dict[str, Any] = {
        "faas.invocation_id": record.request_id,
        "faas.trigger": faas_trigger(record.trigger),
        "faas.coldstart": record.cold,
        "lamina.trigger": record.trigger,
        "lamina.status": record.status,
        "lamina.billed_ms": record.billed_ms,
    }
    if record.instance_id:
        attributes["lamina.instance_id"] = record.instance_id
    if record.max_memory_mb is not None:
        attributes["lamina.max_memory_used_mb"] = record.max_memory_mb
    if record.init_ms is not None:
        attributes["lamina.init_ms"] = record.init_ms
    if record.error_type:
        attributes["error.type"] = record.error_type
    return attributes


class OtlpExporter:
    """Sends invocation records as spans to an OTLP/HTTP endpoint from a thread of its own."""

    def __init__(
        self,
        endpoint: str,
        *,
        app: str,
        function_arns: Mapping[str, str],  # function id -> ARN (cloud.resource_id)
        max_queued_batches: int = _MAX_QUEUED_BATCHES,
    ) -> None:
        self.endpoint = endpoint
        self._app = app
        self._arns = dict(function_arns)
        self._queue: queue.Queue[list[InvocationRow] | None] = queue.Queue(max_queued_batches)
        self._thread: threading.Thread | None = None
        self._exporter: Any = None
        self._resources: dict[tuple[str, int], Any] = {}
        self._failing = False
        self.exported = 0  # spans the collector accepted
        self.dropped = 0  # spans dropped: queue full, or the collector refused them

    def start(self) -> None:
        """Load opentelemetry and start the export thread (ImportError if it is missing)."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self._exporter = OTLPSpanExporter(endpoint=self.endpoint)
        self._thread = threading.Thread(target=self._run, name="lamina-otlp", daemon=True)
        self._thread.start()
        log.info("exporting traces over OTLP/HTTP", extra={"endpoint": self.endpoint})

    # -- the recorder's side: never blocks ---------------------------------------------------
    def submit(self, records: Sequence[InvocationRow]) -> None:
        """Queue a flushed batch (rows, as the recorder buffers them) for export; dropped (and
        counted) when the queue is full. The rows become records in the export thread."""
        if self._thread is None or not records:
            return
        try:
            self._queue.put_nowait(list(records))
        except queue.Full:
            self.dropped += len(records)
            self._set_failing(True, "the export queue is full; spans are dropped")

    def close(self, timeout_s: float = 5.0) -> None:
        """Export what is queued within `timeout_s`, then stop (blocking: call it in a thread)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        thread.join(timeout_s)
        with contextlib.suppress(Exception):
            self._exporter.shutdown()

    # -- the export thread -------------------------------------------------------------------
    def _run(self) -> None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        while (batch := self._queue.get()) is not None:
            try:
                records = map(invocation_from_row, batch)
                spans = [self.span(r) for r in records if r.trace_id and r.span_id]
            except Exception:
                log.exception("invocation records could not be made into spans")
                continue
            for i in range(0, len(spans), _MAX_SPANS_PER_REQUEST):
                chunk = spans[i : i + _MAX_SPANS_PER_REQUEST]
                try:
                    ok = self._exporter.export(chunk) is SpanExportResult.SUCCESS
                except Exception:
                    ok = False
                if ok:
                    self.exported += len(chunk)
                else:
                    self.dropped += len(chunk)
                self._set_failing(not ok, "the OTLP endpoint did not accept spans")

    def _set_failing(self, failing: bool, why: str) -> None:
        """Log when export starts failing and when it recovers, not every failed batch."""
        if failing == self._failing:
            return
        self._failing = failing
        if failing:
            log.warning(why, extra={"endpoint": self.endpoint, "dropped": self.dropped})
        else:
            log.info("OTLP export works again", extra={"endpoint": self.endpoint})

    def span(self, record: InvocationRecord) -> Any:
        """The OpenTelemetry `ReadableSpan` of an invocation record (which has trace ids)."""
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        assert record.trace_id is not None and record.span_id is not None
        trace_id = int(record.trace_id, 16)
        sampled = TraceFlags(TraceFlags.SAMPLED)
        parent = None
        if record.parent_span_id:
            parent = SpanContext(trace_id, int(record.parent_span_id, 16), True, sampled)
        start_ns = record.start_ms * 1_000_000
        status = Status(StatusCode.UNSET)
        if record.status != "ok":
            detail = f" ({record.error_type})" if record.error_type else ""
            status = Status(StatusCode.ERROR, f"{record.status}{detail}")
        return ReadableSpan(
            name=record.function_id,
            context=SpanContext(trace_id, int(record.span_id, 16), False, sampled),
            parent=parent,
            resource=self._resource(record),
            attributes=span_attributes(record),
            kind=SpanKind.CONSUMER if record.trigger in _CONSUMER_TRIGGERS else SpanKind.SERVER,
            status=status,
            start_time=start_ns,
            end_time=start_ns + round(record.duration_ms * 1_000_000),
            instrumentation_scope=InstrumentationScope("lamina"),
        )

    def _resource(self, record: InvocationRecord) -> Any:
        """One resource per function (spans are grouped by it): its service and FaaS facts."""
        key = (record.function_id, record.memory_mb)
        resource = self._resources.get(key)
        if resource is None:
            from opentelemetry.sdk.resources import Resource

            fid = record.function_id
            attributes: dict[str, Any] = {
                "service.name": fid.split(".", 1)[0],
                "service.namespace": self._app,
                "faas.name": fid,
                "faas.version": "$LATEST",
                "faas.max_memory": record.memory_mb * 1024 * 1024,  # bytes
            }
            if fid in self._arns:
                attributes["cloud.resource_id"] = self._arns[fid]
            resource = self._resources[key] = Resource.create(attributes)
        return resource
