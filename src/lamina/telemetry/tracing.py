"""W3C Trace Context (`traceparent`) helpers: parse, format, new ids, the span of an invocation.

Every invocation is one span. Its trace id and parent come from the caller's `traceparent`
(an HTTP header at the gateway, a message's system attribute for queued work); a missing or
invalid header starts a new trace, as the W3C spec asks. The platform then hands the instance
the invocation's own context, `00-<trace id>-<its span id>-<flags>`, which is exactly the
`traceparent` the function sends on (`lamina.invoke`, `lamina.send`, ...), so the callee's
span becomes a child of this one.

Pure and cheap (a regex match and two random numbers per invocation); standard library only.
Spec: https://www.w3.org/TR/trace-context/#traceparent-header
"""

from __future__ import annotations

import random
import re
import time
from typing import NamedTuple

__all__ = [
    "TRACEPARENT",
    "InvocationSpan",
    "TraceContext",
    "invocation_span",
    "new_span_id",
    "new_trace_id",
    "own_xray_header",
    "parse_traceparent",
    "xray_header",
]

TRACEPARENT = "traceparent"

# version "-" trace-id "-" parent-id "-" trace-flags, lower-case hex; a future version may
# append fields after another "-".
_HEADER = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_SAMPLED = 0x01  # the only flag version 00 defines; others are not passed on


class TraceContext(NamedTuple):
    """A parsed `traceparent`: the trace, the caller's span in it, and the trace flags."""

    trace_id: str  # 32 lower-case hex digits, not all zero
    span_id: str  # 16 lower-case hex digits, not all zero (the header's parent-id)
    flags: str = "01"  # 2 hex digits; "01": sampled

    def header(self) -> str:
        """The `traceparent` value, always version 00."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


class InvocationSpan(NamedTuple):
    """The span of one invocation, made by `invocation_span`."""

    trace_id: str
    span_id: str  # this invocation's own span id
    parent_span_id: str | None  # the caller's span id; None when the invocation starts the trace
    traceparent: str  # what the function passes on: 00-trace_id-span_id-flags


def parse_traceparent(value: str | None) -> TraceContext | None:
    """The context a `traceparent` value carries, or None when it is absent or invalid.

    Version 00 must be exactly 55 characters; a higher version (not `ff`) is read for its
    first four fields, as the spec asks, when what follows them starts with `-`. All-zero ids
    are invalid. Only the sampled flag is kept: the context is passed on as version 00."""
    if not value:
        return None
    m = _HEADER.fullmatch(value.strip())
    if m is None:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    if flags not in ("00", "01"):
        flags = "01" if int(flags, 16) & _SAMPLED else "00"
    return TraceContext(trace_id, span_id, flags)


def new_trace_id() -> str:
    """32 lower-case hex digits: the epoch second, its millisecond, then 21 random digits
    (see `_new_ids`)."""
    return _new_ids()[0]


def new_span_id() -> str:
    """16 random lower-case hex digits, never all zero."""
    span_id = random.randbytes(8).hex()
    return span_id if span_id != _ZERO_SPAN else new_span_id()


def _new_ids() -> tuple[str, str]:
    """A new trace id and span id from one draw (~0.3 µs).

    As AWS X-Ray's ids (and the OpenTelemetry X-Ray id generator's), a trace id starts with
    the epoch second it began in, so that the X-Ray form of the id tells the real time. The
    next 3 digits are the millisecond (000-3e7), then 84 random bits: ids sort by time to the
    millisecond, so the store's trace index grows at one end. With the second alone, a
    second's invocations were inserted at random places among each other, which cost the
    telemetry writer about 1 µs more per record at 10,000 records/s. 84 random bits keep the
    ids unique (W3C asks for at least the right-most 56 bits random)."""
    second, millisecond = divmod(int(time.time() * 1000), 1000)
    ids = random.randbytes(19).hex()
    trace_id = f"{second & 0xFFFFFFFF:08x}{millisecond:03x}{ids[:21]}"
    span_id = ids[-16:]
    if span_id == _ZERO_SPAN:  # pragma: no cover - 2**-64
        return _new_ids()
    return trace_id, span_id


def invocation_span(traceparent: str | None) -> InvocationSpan:
    """A new span for an invocation whose caller sent `traceparent`: a child of the caller's
    span, or the root of a new (sampled) trace when the header is absent or invalid.

    (`random` reseeds itself in a forked child, so forked processes never repeat ids.)"""
    parent = parse_traceparent(traceparent) if traceparent else None
    if parent is None:
        trace_id, span_id = _new_ids()
        return InvocationSpan(trace_id, span_id, None, f"00-{trace_id}-{span_id}-01")
    trace_id, span_id = parent.trace_id, new_span_id()
    return InvocationSpan(
        trace_id, span_id, parent.span_id, f"00-{trace_id}-{span_id}-{parent.flags}"
    )


def xray_header(traceparent: str | None) -> str | None:
    """The context as an AWS X-Ray trace header (`Root=1-xxxxxxxx-x…x;Parent=…;Sampled=1`), the
    form of `_X_AMZN_TRACE_ID` and of an SQS record's `AWSTraceHeader`; None when invalid.

    The 32-digit W3C trace id splits into X-Ray's 8-digit epoch part and 24-digit unique part,
    as the OpenTelemetry AWS X-Ray propagator maps it, so both name the same trace."""
    context = parse_traceparent(traceparent)
    return None if context is None else own_xray_header(context.header())


def own_xray_header(traceparent: str) -> str:
    """`xray_header` of a context Lamina made itself (`TraceContext.header()`,
    `InvocationSpan.traceparent`: version 00, flags 00 or 01), without checking it again."""
    t = traceparent
    return f"Root=1-{t[3:11]}-{t[11:35]};Parent={t[36:52]};Sampled={t[54]}"
