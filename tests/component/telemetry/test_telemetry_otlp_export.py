"""The OTLP exporter against an endpoint where nothing listens: handing batches over never
blocks, closing keeps to its deadline, and the lost spans are counted and logged once."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from lamina.store.types import InvocationRecord, invocation_row
from lamina.telemetry.otlp import OtlpExporter


def _record(n: int) -> InvocationRecord:
    return InvocationRecord(
        f"req-{n}",
        "svc.fn",
        "http",
        1_700_000_000_000 + n,
        1.0,
        1,
        None,
        False,
        128,
        None,
        "ok",
        trace_id=f"{n + 1:032x}",
        span_id=f"{n + 1:016x}",
    )


def _closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.timeout(30)
def test_an_unreachable_collector_costs_nothing_but_the_spans(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    exporter = OtlpExporter(
        f"http://127.0.0.1:{_closed_port()}/v1/traces", app="a", function_arns={}
    )
    exporter.start()
    caplog.set_level(logging.WARNING, logger="lamina.telemetry.otlp")

    started = time.monotonic()
    for n in range(3):
        exporter.submit([invocation_row(_record(n))])
    handed_over_s = time.monotonic() - started
    exporter.close(timeout_s=5)

    assert handed_over_s < 0.1
    assert time.monotonic() - started < 10
    assert (exporter.exported, exporter.dropped) == (0, 3)
    warnings = [r for r in caplog.records if r.name == "lamina.telemetry.otlp"]
    assert [r.getMessage() for r in warnings] == ["the OTLP endpoint did not accept spans"]
