"""Gateway responses counted by the route the router matched, never by the raw path."""

from __future__ import annotations

from lamina.gateway.counts import INVOKE_ROUTE, RequestCounts
from lamina.gateway.routes import Router
from lamina.manifest.routekey import RouteKey
from lamina.telemetry.metrics import RequestCount


def test_requests_are_counted_by_matched_route_key_and_status() -> None:
    routes = [RouteKey.parse("GET /users/{id}"), RouteKey.parse("$default")]
    router = Router([(route, "target") for route in routes])
    counts = RequestCounts(routes)
    for path, status in (("/users/1", 200), ("/users/2", 200), ("/users/3", 502), ("/x", 200)):
        match = router.match("GET", path)
        assert match is not None
        counts.add(match.route, status)
    counts.add(None, 404)
    counts.add(INVOKE_ROUTE, 200)
    assert sorted(counts.snapshot(), key=lambda c: (c.route, c.status)) == [
        RequestCount("$default", 200, 1),
        RequestCount("GET /users/{id}", 200, 2),
        RequestCount("GET /users/{id}", 502, 1),
        RequestCount("POST /2015-03-31/functions/{FunctionName}/invocations", 200, 1),
        RequestCount("unmatched", 404, 1),
    ]
