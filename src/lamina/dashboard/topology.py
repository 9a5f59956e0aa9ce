"""The dashboard's map: services and their functions, and what connects them, from the loaded
manifest (HTTP routes, schedules, queues and topics that trigger functions) plus the
function-to-function calls observed in traces (a child span whose parent span ran in another
function). Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lamina.manifest import AppSpec, HttpTrigger, QueueTrigger, ScheduleTrigger, TopicTrigger

__all__ = ["SpanLink", "app_map", "observed_edges"]


@dataclass(frozen=True, slots=True)
class SpanLink:
    """What the map needs of one invocation record: its span, its parent span and where it ran."""

    span_id: str
    parent_span_id: str | None
    function_id: str
    trigger: str


def observed_edges(links: Iterable[SpanLink]) -> list[dict[str, Any]]:
    """Calls seen between functions: for each invocation whose parent span ran in another
    function, one edge caller -> callee (with the callee's trigger: invoke, event, queue,
    topic), counted. Parents outside `links` (an HTTP client's span) make no edge."""
    links = list(links)
    where = {link.span_id: link.function_id for link in links}
    counts: Counter[tuple[str, str, str]] = Counter()
    for link in links:
        caller = where.get(link.parent_span_id or "")
        if caller is not None and caller != link.function_id:
            counts[(caller, link.function_id, link.trigger)] += 1
    return [
        {"from": caller, "to": callee, "kind": "call", "trigger": trigger, "count": count}
        for (caller, callee, trigger), count in sorted(counts.items())
    ]


def app_map(app: AppSpec, observed: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The `GET /map` body:

    {"app": name,
     "services": [{"name", "tables": [...], "functions": [{"id", "name", "memory_mb",
                   "min_instances", "max_instances"}]}],
     "sources": [{"id", "kind": "route" | "schedule" | "queue" | "topic", "label"}],
     "edges": [{"from": source or function id, "to": function id,
                "kind": "http" | "schedule" | "queue" | "topic" | "call", ...}]}

    Sources are listed once each (a queue consumed by two functions is one source with two
    edges), in manifest order."""
    services = [
        {
            "name": service.name,
            "tables": sorted(service.tables),
            "functions": [
                {
                    "id": fn.id,
                    "name": fn.name,
                    "memory_mb": fn.memory,
                    "min_instances": fn.min_instances,
                    "max_instances": fn.max_instances,
                }
                for fn in service.functions.values()
            ],
        }
        for service in app.services.values()
    ]
    sources: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []

    def connect(source_id: str, kind: str, label: str, to: str, edge_kind: str) -> None:
        sources.setdefault(source_id, {"id": source_id, "kind": kind, "label": label})
        edges.append({"from": source_id, "to": to, "kind": edge_kind})

    for fn in app.functions().values():
        for event in fn.events:
            if isinstance(event, HttpTrigger):
                label = str(event.route)
                connect(f"route:{label}", "route", label, fn.id, "http")
            elif isinstance(event, ScheduleTrigger):
                source = f"schedule:{fn.id}:{event.expression}"
                connect(source, "schedule", event.expression, fn.id, "schedule")
            elif isinstance(event, QueueTrigger):
                connect(f"queue:{event.name}", "queue", event.name, fn.id, "queue")
            elif isinstance(event, TopicTrigger):
                connect(f"topic:{event.name}", "topic", event.name, fn.id, "topic")
    return {
        "app": app.name,
        "services": services,
        "sources": list(sources.values()),
        "edges": edges + list(observed),
    }
