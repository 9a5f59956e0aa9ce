"""Route matching as API Gateway HTTP APIs do it: pure, built once, matched per request.

Precedence, from AWS "Working with routes for HTTP APIs": a full match of route and method
first, then a route with a greedy path variable (`{proxy+}`), then `$default`. Within that,
at each path position a literal segment beats `{param}`, which beats `{proxy+}`; for the same
path template a specific method beats `ANY` ("ANY matches all methods that you haven't
defined for a resource"). When the most specific path has no route for the method, matching
backtracks to the next less specific path, so `POST /pets/dog` still reaches
`POST /pets/{id}` next to `GET /pets/dog`.

Path rules, each pinned by a test in `tests/unit/gateway/test_routes.py`:
- the path is the percent-decoded request path, case-sensitive;
- a trailing slash is significant, as on HTTP APIs: `/pets/` does not match `GET /pets`
  (REST APIs ignore it; HTTP APIs answer 404);
- `{param}` matches exactly one non-empty segment;
- `{proxy+}` matches the non-empty rest of the path, one or more segments: `/{proxy+}`
  matches `/a` and `/a/b/` but not `/`, `/pets/{proxy+}` does not match `/pets` or `/pets/`.
  Its value is that rest without the leading slash (`a/b/`), as AWS sends it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from lamina.manifest.routekey import RouteKey

__all__ = ["RouteMatch", "Router"]

T = TypeVar("T")


@dataclass(slots=True)  # not frozen: built on every request, frozen __init__ is slower
class RouteMatch(Generic[T]):
    """The route a request matched, its target and the path parameters it captured."""

    route: RouteKey
    target: T
    path_params: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    """One route at a trie node: the parameter names by position, for building path_params."""

    route: RouteKey
    target: T
    param_names: tuple[str, ...]  # names of the {param} segments, in path order
    greedy_name: str | None  # name of the trailing {name+}, if any


class _Node(Generic[T]):
    """A trie node for one path position. Children are tried literal, then param, then greedy."""

    __slots__ = ("greedy", "literal", "param", "terminal")

    def __init__(self) -> None:
        self.literal: dict[str, _Node[T]] = {}
        self.param: _Node[T] | None = None
        self.terminal: dict[str, _Entry[T]] = {}  # method (or ANY) -> entry ending here
        self.greedy: dict[str, _Entry[T]] = {}  # method (or ANY) -> entry for {name+} here


def _pick(entries: dict[str, _Entry[T]], method: str) -> _Entry[T] | None:
    """The entry for `method`, else the ANY entry, else None."""
    entry = entries.get(method)
    return entry if entry is not None else entries.get("ANY")


class Router(Generic[T]):
    """Matches `(method, path)` to the most specific route, as an HTTP API does.

    Literal routes are one dict lookup. Routes with parameters live in a segment trie walked
    depth-first in precedence order; it backtracks only when a more specific branch has no
    route for the method or the rest of the path, so a match costs O(segments) in practice.
    Duplicate route keys are rejected by the manifest; here the last one wins.
    """

    __slots__ = ("_default", "_literal", "_root")

    def __init__(self, routes: Iterable[tuple[RouteKey, T]]) -> None:
        self._literal: dict[str, dict[str, RouteMatch[T]]] = {}
        self._root: _Node[T] = _Node()
        self._default: RouteMatch[T] | None = None
        for route, target in routes:
            self._add(route, target)

    def _add(self, route: RouteKey, target: T) -> None:
        if route.is_default:
            self._default = RouteMatch(route, target, {})
            return
        if all(seg.kind == "literal" for seg in route.segments):
            self._literal.setdefault(route.path, {})[route.method] = RouteMatch(route, target, {})
            return
        node = self._root
        names: list[str] = []
        for seg in route.segments:
            if seg.kind == "literal":
                node = node.literal.setdefault(seg.value, _Node())
            elif seg.kind == "param":
                names.append(seg.value)
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:  # greedy, always last (RouteKey.parse guarantees it)
                node.greedy[route.method] = _Entry(route, target, tuple(names), seg.value)
                return
        node.terminal[route.method] = _Entry(route, target, tuple(names), None)

    def match(self, method: str, path: str) -> RouteMatch[T] | None:
        """The best route for `method` and the percent-decoded `path`, or None (a 404)."""
        by_method = self._literal.get(path)
        if by_method is not None:
            hit = by_method.get(method) or by_method.get("ANY")
            if hit is not None:
                return RouteMatch(hit.route, hit.target, {})
        if path.startswith("/"):
            segments = path[1:].split("/") if path != "/" else []
            values: list[str] = []
            found = self._walk(self._root, segments, 0, method, values)
            if found is not None:
                return found
        if self._default is not None:
            return RouteMatch(self._default.route, self._default.target, {})
        return None

    def _walk(
        self, node: _Node[T], segments: list[str], index: int, method: str, values: list[str]
    ) -> RouteMatch[T] | None:
        """Depth-first search in precedence order; `values` holds the {param} values so far."""
        if index == len(segments):
            entry = _pick(node.terminal, method) if node.terminal else None
            return _build(entry, values, None) if entry is not None else None
        segment = segments[index]
        child = node.literal.get(segment)
        if child is not None:
            found = self._walk(child, segments, index + 1, method, values)
            if found is not None:
                return found
        if node.param is not None and segment:
            values.append(segment)
            found = self._walk(node.param, segments, index + 1, method, values)
            values.pop()
            if found is not None:
                return found
        if node.greedy:
            entry = _pick(node.greedy, method)
            if entry is not None:
                rest = "/".join(segments[index:])
                if rest:
                    return _build(entry, values, rest)
        return None


def _build(entry: _Entry[T], values: list[str], rest: str | None) -> RouteMatch[T]:
    params = dict(zip(entry.param_names, values, strict=True))
    if entry.greedy_name is not None and rest is not None:
        params[entry.greedy_name] = rest
    return RouteMatch(entry.route, entry.target, params)
