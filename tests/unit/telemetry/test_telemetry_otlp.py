"""OTLP export without a collector: which environment turns it on, and how an invocation
record becomes a span (ids, parent, kind, status, times, FaaS attributes, resource)."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from lamina.store.types import InvocationRecord
from lamina.telemetry.otlp import OtlpExporter, otlp_traces_endpoint

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:orders.place"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, None, id="nothing set: no export"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
            "http://collector:4318/v1/traces",
            id="the base endpoint gets the traces path",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"},
            "http://collector:4318/v1/traces",
            id="a trailing slash is not doubled",
        ),
        pytest.param(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
            },
            "http://traces:9999/custom",
            id="the traces endpoint wins and is used as given",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"},
            None,
            id="the SDK disabled",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"},
            None,
            id="the traces exporter set to none",
        ),
        pytest.param(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_TRACES_EXPORTER": "console,otlp",
            },
            "http://c:4318/v1/traces",
            id="otlp among the traces exporters",
        ),
    ],
)
def test_the_standard_variables_choose_the_endpoint(
    environ: dict[str, str], expected: str | None
) -> None:
    assert otlp_traces_endpoint(environ) == expected


def _record(**changes: object) -> InvocationRecord:
    record = InvocationRecord(
        request_id="req-1",
        function_id="orders.place",
        trigger="invoke",
        start_ms=1_700_000_000_123,
        duration_ms=12.5,
        billed_ms=13,
        init_ms=80.0,
        cold=True,
        memory_mb=256,
        max_memory_mb=40,
        status="ok",
        instance_id="i-1",
        trace_id=TRACE,
        span_id="00f067aa0ba902b7",
        parent_span_id="b7ad6b7169203331",
    )
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def _exporter() -> OtlpExporter:
    return OtlpExporter("http://unused", app="shop", function_arns={"orders.place": ARN})


def test_a_record_becomes_a_span_with_its_own_ids_times_and_faas_attributes() -> None:
    span = _exporter().span(_record())

    assert span.name == "orders.place"
    assert f"{span.context.trace_id:032x}" == TRACE
    assert f"{span.context.span_id:016x}" == "00f067aa0ba902b7"
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.parent.trace_id == span.context.trace_id
    assert span.kind is SpanKind.SERVER
    assert span.status.status_code is StatusCode.UNSET
    assert span.start_time == 1_700_000_000_123_000_000
    assert span.end_time - span.start_time == 12_500_000
    assert dict(span.attributes) == {
        "faas.invocation_id": "req-1",
        "faas.trigger": "other",
        "faas.coldstart": True,
        "lamina.trigger": "invoke",
        "lamina.status": "ok",
        "lamina.billed_ms": 13,
        "lamina.instance_id": "i-1",
        "lamina.max_memory_used_mb": 40,
        "lamina.init_ms": 80.0,
    }
    resource = span.resource.attributes
    assert resource["service.name"] == "orders"
    assert resource["service.namespace"] == "shop"
    assert resource["faas.name"] == "orders.place"
    assert resource["faas.max_memory"] == 256 * 1024 * 1024
    assert resource["cloud.resource_id"] == ARN


def test_a_root_span_has_no_parent_and_one_resource_serves_a_function() -> None:
    exporter = _exporter()
    first = exporter.span(_record(parent_span_id=None))
    second = exporter.span(_record(span_id="1111111111111111"))

    assert first.parent is None
    assert first.resource is second.resource


@pytest.mark.parametrize(
    ("trigger", "kind", "faas_trigger"),
    [
        ("http", SpanKind.SERVER, "http"),
        ("invoke", SpanKind.SERVER, "other"),
        ("schedule", SpanKind.SERVER, "timer"),
        ("event", SpanKind.CONSUMER, "other"),
        ("queue", SpanKind.CONSUMER, "pubsub"),
        ("topic", SpanKind.CONSUMER, "pubsub"),
    ],
)
def test_the_trigger_gives_the_span_kind_and_faas_trigger(
    trigger: str, kind: SpanKind, faas_trigger: str
) -> None:
    span = _exporter().span(_record(trigger=trigger))

    assert span.kind is kind
    assert span.attributes["faas.trigger"] == faas_trigger


def test_a_failed_invocation_is_an_error_span_with_its_error_type() -> None:
    span = _exporter().span(_record(status="timeout", error_type="Sandbox.Timedout"))

    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "timeout (Sandbox.Timedout)"
    assert span.attributes["error.type"] == "Sandbox.Timedout"
