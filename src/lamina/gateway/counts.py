"""Gateway responses counted by route and status, for `lamina_gateway_requests_total`.

Counting costs a request one dict increment. The key is the matched `RouteKey`'s identity,
not its value: hashing the frozen dataclass costs about a microsecond, `id()` next to nothing,
and the router hands back the very route objects it was built from, which live as long as
the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable

from lamina.manifest.routekey import RouteKey
from lamina.telemetry.metrics import UNMATCHED_ROUTE, RequestCount

__all__ = ["INVOKE_ROUTE", "RequestCounts"]

# The Invoke API's path as a route key, so that it is labelled like any other route.
INVOKE_ROUTE = RouteKey.parse("POST /2015-03-31/functions/{FunctionName}/invocations")


class RequestCounts:
    """Responses per (route, status); `add(None, 404)` counts a request no route matched."""

    __slots__ = ("_counts", "_labels", "_routes")

    def __init__(self, routes: Iterable[RouteKey]) -> None:
        self._routes: list[RouteKey] = [*routes, INVOKE_ROUTE]  # kept alive: ids key counts
        self._labels: dict[int, str] = {id(r): str(r) for r in self._routes}
        self._labels[id(None)] = UNMATCHED_ROUTE
        self._counts: dict[tuple[int, int], int] = {}

    def label(self, routes: Iterable[RouteKey]) -> None:
        """Name routes added after start (hot reload). The routes are kept alive here: their
        ids key the counts, and a freed route's id could be reused by another object."""
        for route in routes:
            self._labels.setdefault(id(route), str(route))
            self._routes.append(route)

    def add(self, route: RouteKey | None, status: int) -> None:
        key = (id(route), status)
        self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> list[RequestCount]:
        return [
            RequestCount(self._labels.get(rid, UNMATCHED_ROUTE), status, count)
            for (rid, status), count in list(self._counts.items())
        ]
