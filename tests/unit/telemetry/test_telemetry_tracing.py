"""W3C traceparent parsing (the spec's valid and invalid forms), new ids, an invocation's span,
and the X-Ray form of a context."""

from __future__ import annotations

import re
import time

import pytest

from lamina.telemetry.tracing import (
    TraceContext,
    invocation_span,
    new_span_id,
    new_trace_id,
    own_xray_header,
    parse_traceparent,
    xray_header,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(VALID, TraceContext(TRACE, PARENT, "01"), id="a sampled version 00 header"),
        pytest.param(
            f"00-{TRACE}-{PARENT}-00", TraceContext(TRACE, PARENT, "00"), id="an unsampled one"
        ),
        pytest.param(f"  {VALID} ", TraceContext(TRACE, PARENT), id="surrounding spaces are OWS"),
        pytest.param(
            f"00-{TRACE}-{PARENT}-09",
            TraceContext(TRACE, PARENT, "01"),
            id="unknown flags are dropped, the sampled bit kept",
        ),
        pytest.param(
            f"cc-{TRACE}-{PARENT}-01-what-the-future-holds",
            TraceContext(TRACE, PARENT, "01"),
            id="a future version is read for its first four fields",
        ),
        pytest.param(
            f"cc-{TRACE}-{PARENT}-01", TraceContext(TRACE, PARENT), id="a future version as is"
        ),
    ],
)
def test_valid_headers_are_read(header: str, expected: TraceContext) -> None:
    assert parse_traceparent(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="no header"),
        pytest.param("", id="an empty header"),
        pytest.param(f"00-{'0' * 32}-{PARENT}-01", id="an all-zero trace id"),
        pytest.param(f"00-{TRACE}-{'0' * 16}-01", id="an all-zero parent id"),
        pytest.param(f"ff-{TRACE}-{PARENT}-01", id="the forbidden version ff"),
        pytest.param(f"00-{TRACE}-{PARENT}-01-extra", id="version 00 with more fields"),
        pytest.param(f"cc-{TRACE}-{PARENT}-01extra", id="a future version without a dash"),
        pytest.param(VALID.upper(), id="upper-case hex"),
        pytest.param(f"00-{TRACE[:-1]}-{PARENT}-01", id="a short trace id"),
        pytest.param(f"00-{TRACE}-{PARENT}0-01", id="a long parent id"),
        pytest.param(f"0-{TRACE}-{PARENT}-01", id="a one-digit version"),
        pytest.param(f"00-{TRACE}-{PARENT}", id="no flags"),
        pytest.param(f"00_{TRACE}_{PARENT}_01", id="wrong separators"),
        pytest.param(f"00-{TRACE[:-1]}g-{PARENT}-01", id="a non-hex digit"),
    ],
)
def test_invalid_headers_are_ignored(header: str | None) -> None:
    assert parse_traceparent(header) is None


def test_a_context_is_passed_on_as_version_00() -> None:
    assert TraceContext(TRACE, PARENT, "00").header() == f"00-{TRACE}-{PARENT}-00"


def test_new_ids_are_lower_case_hex_of_the_right_length_and_differ() -> None:
    traces = {new_trace_id() for _ in range(100)}
    spans = {new_span_id() for _ in range(100)}

    assert len(traces) == 100 and len(spans) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in traces)
    assert all(re.fullmatch(r"[0-9a-f]{16}", s) for s in spans)


def test_a_new_trace_id_starts_with_its_epoch_second_as_x_ray_ids_do() -> None:
    before = int(time.time())
    trace_id = new_trace_id()
    after = int(time.time())

    assert before <= int(trace_id[:8], 16) <= after
    root = xray_header(f"00-{trace_id}-{PARENT}-01")
    assert root is not None and root.startswith(f"Root=1-{trace_id[:8]}-{trace_id[8:]};")


def test_new_trace_ids_sort_by_their_millisecond_so_the_trace_index_grows_at_one_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instants = [1764500000.001, 1764500000.002, 1764500000.999, 1764500001.0, 1764500001.5]
    made = []
    for instant in instants:
        monkeypatch.setattr(time, "time", lambda instant=instant: instant)
        made += [new_trace_id() for _ in range(3)]

    assert made[0][:11] == f"{1764500000:08x}001"
    assert made[-1][:11] == f"{1764500001:08x}1f4"
    assert sorted(made[::3]) == made[::3], "ids made later must sort after earlier ones"
    assert len({t[11:] for t in made}) == len(made), "the rest of each id is random"


def test_an_invocation_with_a_caller_is_a_child_span_in_the_callers_trace() -> None:
    span = invocation_span(f"00-{TRACE}-{PARENT}-00")

    assert span.trace_id == TRACE
    assert span.parent_span_id == PARENT
    assert span.span_id != PARENT
    assert span.traceparent == f"00-{TRACE}-{span.span_id}-00"  # the caller's flags go on


@pytest.mark.parametrize("header", [None, "garbage"], ids=["without a header", "with a bad one"])
def test_an_invocation_without_a_valid_caller_starts_a_sampled_trace(header: str | None) -> None:
    span = invocation_span(header)

    assert span.parent_span_id is None
    assert span.traceparent == f"00-{span.trace_id}-{span.span_id}-01"
    assert parse_traceparent(span.traceparent) == TraceContext(span.trace_id, span.span_id)


def test_the_xray_form_names_the_same_trace_and_parent() -> None:
    assert xray_header(VALID) == (
        "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
    )
    assert xray_header(f"00-{TRACE}-{PARENT}-00") is not None
    assert str(xray_header(f"00-{TRACE}-{PARENT}-00")).endswith("Sampled=0")
    assert xray_header("nonsense") is None


def test_the_xray_form_of_lamina_s_own_contexts_needs_no_second_check() -> None:
    for header in (VALID, f"00-{TRACE}-{PARENT}-00", invocation_span(None).traceparent):
        assert own_xray_header(header) == xray_header(header)
