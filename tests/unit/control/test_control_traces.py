"""The trace view (`GET /traces/{id}`) and the CLI's waterfall order, from records alone."""

from __future__ import annotations

from lamina.cli.observe import waterfall
from lamina.control.observe import trace_view
from lamina.store.types import InvocationRecord

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "cccccccccccccccc"  # the span of a client outside Lamina


def _record(
    fid: str, span: str, parent: str | None, start_ms: int, **more: object
) -> InvocationRecord:
    record = InvocationRecord(
        request_id=f"req-{span[:2]}",
        function_id=fid,
        trigger="invoke",
        start_ms=start_ms,
        duration_ms=5.0,
        billed_ms=5,
        init_ms=None,
        cold=False,
        memory_mb=128,
        max_memory_mb=None,
        status="ok",
        trace_id=TRACE,
        span_id=span,
        parent_span_id=parent,
    )
    for key, value in more.items():
        setattr(record, key, value)
    return record


FRONT = _record("front.api", "a" * 16, CALLER, 1000, trigger="http", cold=True)
PLACE = _record("orders.place", "b" * 16, "a" * 16, 1000)  # same millisecond as its parent
MAIL = _record("mail.notify", "d" * 16, "b" * 16, 1020, trigger="topic")
AUDIT = _record("mail.audit", "e" * 16, "b" * 16, 1010, status="error", error_type="KeyError")


def test_spans_come_oldest_first_parents_before_children_with_the_agreed_fields() -> None:
    view = trace_view(TRACE, [MAIL, PLACE, AUDIT, FRONT])  # newest first, as the store gives

    assert view["trace_id"] == TRACE
    assert [s["function"] for s in view["spans"]] == [
        "front.api",
        "orders.place",
        "mail.audit",
        "mail.notify",
    ]
    front, place, audit, _ = view["spans"]
    assert front == {
        "span_id": "a" * 16,
        "parent_span_id": None,  # its parent is outside Lamina: a root here
        "remote_parent_span_id": CALLER,
        "name": "front.api",
        "service": "front",
        "function": "front.api",
        "request_id": "req-aa",
        "trigger": "http",
        "start_ms": 1000,
        "duration_ms": 5.0,
        "status": "ok",
        "error_type": None,
        "cold": True,
    }
    assert place["parent_span_id"] == "a" * 16 and place["remote_parent_span_id"] is None
    assert place["service"] == "orders"
    assert (audit["status"], audit["error_type"]) == ("error", "KeyError")


def test_the_waterfall_puts_each_span_under_its_parent_siblings_by_start() -> None:
    spans = trace_view(TRACE, [MAIL, PLACE, AUDIT, FRONT])["spans"]

    rows = [(depth, s["function"]) for depth, s in waterfall(list(reversed(spans)))]

    assert rows == [(0, "front.api"), (1, "orders.place"), (2, "mail.audit"), (2, "mail.notify")]


def test_spans_whose_parents_are_missing_are_roots_of_the_waterfall() -> None:
    spans = trace_view(TRACE, [MAIL, AUDIT])["spans"]  # orders.place not recorded (yet)

    assert [(d, s["function"]) for d, s in waterfall(spans)] == [
        (0, "mail.audit"),
        (0, "mail.notify"),
    ]
