"""The dashboard's map: services, functions and their triggers from the manifest, plus calls
observed between functions in traces."""

from __future__ import annotations

from pathlib import Path

from lamina.dashboard.topology import SpanLink, app_map, observed_edges
from lamina.manifest import parse_app

MANIFEST = """
app: shop
services:
  web:
    functions:
      home:
        handler: h.home
        events:
          - http: GET /
          - http: POST /orders
      tick:
        handler: h.tick
        events: [{schedule: rate(5 minutes)}]
  orders:
    tables: {orders: {key: id}}
    functions:
      fulfil:
        handler: h.fulfil
        events: [{queue: orders}, {topic: order-events}]
      audit:
        handler: h.audit
        events: [{queue: orders}]
"""


def test_the_map_lists_services_sources_and_trigger_edges_in_manifest_order(
    tmp_path: Path,
) -> None:
    for service in ("web", "orders"):
        (tmp_path / "services" / service).mkdir(parents=True)
        (tmp_path / "services" / service / "h.py").write_text("")
    body = app_map(parse_app(MANIFEST, root=tmp_path))

    assert body["app"] == "shop"
    assert [
        (s["name"], s["tables"], [f["id"] for f in s["functions"]]) for s in body["services"]
    ] == [
        ("web", [], ["web.home", "web.tick"]),
        ("orders", ["orders"], ["orders.fulfil", "orders.audit"]),
    ]
    assert body["sources"] == [
        {"id": "route:GET /", "kind": "route", "label": "GET /"},
        {"id": "route:POST /orders", "kind": "route", "label": "POST /orders"},
        {"id": "schedule:web.tick:rate(5 minutes)", "kind": "schedule", "label": "rate(5 minutes)"},
        {"id": "queue:orders", "kind": "queue", "label": "orders"},  # once, for two consumers
        {"id": "topic:order-events", "kind": "topic", "label": "order-events"},
    ]
    assert [(e["from"], e["to"], e["kind"]) for e in body["edges"]] == [
        ("route:GET /", "web.home", "http"),
        ("route:POST /orders", "web.home", "http"),
        ("schedule:web.tick:rate(5 minutes)", "web.tick", "schedule"),
        ("queue:orders", "orders.fulfil", "queue"),
        ("topic:order-events", "orders.fulfil", "topic"),
        ("queue:orders", "orders.audit", "queue"),
    ]


def test_calls_between_functions_are_counted_from_parent_spans() -> None:
    links = [
        SpanLink("a1", None, "web.home", "http"),  # root: its parent is the HTTP client
        SpanLink("b1", "a1", "orders.fulfil", "queue"),
        SpanLink("a2", "client", "web.home", "http"),
        SpanLink("b2", "a2", "orders.fulfil", "queue"),
        SpanLink("c1", "a2", "orders.audit", "invoke"),
        SpanLink("d1", "b2", "orders.fulfil", "invoke"),  # a function calling itself: no edge
        SpanLink("e1", "gone", "orders.audit", "event"),  # parent not in the window: no edge
    ]

    assert observed_edges(links) == [
        {"from": "web.home", "to": "orders.audit", "kind": "call", "trigger": "invoke", "count": 1},
        {"from": "web.home", "to": "orders.fulfil", "kind": "call", "trigger": "queue", "count": 2},
    ]
