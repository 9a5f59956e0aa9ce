"""API Gateway HTTP API route keys: `METHOD /path`, `ANY /path`, `{param}`, `{proxy+}`, `$default`.

Parsing is pure and shared: the manifest validates route keys with it, the gateway's router
matches requests against the parsed form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["HTTP_METHODS", "RouteKey", "Segment"]

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
_PARAM = re.compile(r"^\{([A-Za-z0-9_.\-]+)(\+?)\}$")
_LITERAL = re.compile(r"^[A-Za-z0-9_.\-~:@!$&'()*,;=%]+$")


@dataclass(frozen=True, slots=True)
class Segment:
    """One `/`-separated piece of a route path."""

    kind: Literal["literal", "param", "greedy"]
    value: str  # literal text, or the parameter name


@dataclass(frozen=True, slots=True)
class RouteKey:
    """A parsed route key. `$default` has method ANY, no segments and `is_default` set."""

    method: str
    path: str
    segments: tuple[Segment, ...] = ()
    is_default: bool = False

    def __str__(self) -> str:
        return "$default" if self.is_default else f"{self.method} {self.path}"

    @classmethod
    def parse(cls, text: str) -> RouteKey:
        """Parse `GET /users/{id}`; raise ValueError saying what is wrong and what is expected."""
        raw = text.strip()
        if raw == "$default":
            return cls(method="ANY", path="", is_default=True)
        parts = raw.split()
        if len(parts) != 2:
            raise ValueError(
                f"expected a route key like 'GET /users/{{id}}', 'ANY /{{proxy+}}' or "
                f"'$default', got {text!r}"
            )
        method, path = parts[0].upper(), parts[1]
        if method not in HTTP_METHODS:
            allowed = ", ".join(sorted(HTTP_METHODS))
            raise ValueError(
                f"unknown HTTP method {parts[0]!r} in {text!r}; expected one of {allowed}"
            )
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/', got {path!r} in {text!r}")
        segments: list[Segment] = []
        names: set[str] = set()
        pieces = [] if path == "/" else path[1:].split("/")
        for index, piece in enumerate(pieces):
            m = _PARAM.match(piece)
            if m:
                name, greedy = m.group(1), bool(m.group(2))
                if name in names:
                    raise ValueError(f"path parameter {{{name}}} appears twice in {text!r}")
                names.add(name)
                if greedy and index != len(pieces) - 1:
                    raise ValueError(
                        f"greedy parameter {{{name}+}} must be the last path segment in {text!r}"
                    )
                segments.append(Segment("greedy" if greedy else "param", name))
            elif piece and _LITERAL.match(piece):
                segments.append(Segment("literal", piece))
            else:
                raise ValueError(f"invalid path segment {piece!r} in route key {text!r}")
        return cls(method=method, path=path, segments=tuple(segments))
