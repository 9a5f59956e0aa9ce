"""CORS decisions for the gateway, as API Gateway HTTP APIs make them. Pure.

- A preflight is an `OPTIONS` request with `Origin` and `Access-Control-Request-Method`; with
  CORS configured the gateway answers it itself (204) and never invokes a function. An allowed
  origin, method and set of headers get the `Access-Control-Allow-*` headers; anything else
  gets a 204 without them, so the browser refuses the real request.
- Other responses to an allowed `Origin` carry `Access-Control-Allow-Origin` (plus
  `-Allow-Credentials` and `-Expose-Headers` when configured); a disallowed origin gets no CORS
  headers. The configured headers replace any the function sent, as on HTTP APIs.
- With `"*"` origins the allowed origin is echoed as `*`; with explicit origins it is echoed as
  sent, with `Vary: Origin` so caches keep the answers apart.
"""

from __future__ import annotations

from lamina.manifest.models import CorsSpec

__all__ = ["CorsPolicy"]

_CORS_PREFIX = b"access-control-"


class CorsPolicy:
    """Built once from `gateway.cors`; answers per request with header lists."""

    __slots__ = (
        "_any_origin",
        "_credentials",
        "_expose",
        "_headers",
        "_max_age",
        "_methods",
        "_origins",
        "_preflight_tail",
    )

    def __init__(self, spec: CorsSpec) -> None:
        self._any_origin = "*" in spec.origins
        self._origins = frozenset(spec.origins)
        self._methods = frozenset(spec.methods)
        self._headers = frozenset(spec.headers)
        self._credentials = spec.credentials
        self._max_age = spec.max_age
        self._expose = ",".join(spec.expose_headers).encode()
        tail = [(b"access-control-allow-methods", ",".join(spec.methods).encode())]
        if spec.max_age:
            tail.append((b"access-control-max-age", str(spec.max_age).encode()))
        self._preflight_tail = tail

    @staticmethod
    def is_preflight(method: str, origin: str | None, request_method: str | None) -> bool:
        return method == "OPTIONS" and origin is not None and request_method is not None

    def allows_origin(self, origin: str | None) -> bool:
        return origin is not None and (self._any_origin or origin in self._origins)

    def preflight(
        self, origin: str, request_method: str, request_headers: str | None
    ) -> list[tuple[bytes, bytes]]:
        """Headers for a preflight's 204: empty when the request is not allowed."""
        if not self.allows_origin(origin):
            return []
        method = request_method.strip().upper()
        if "*" not in self._methods and method not in self._methods:
            return []
        asked = [h.strip().lower() for h in (request_headers or "").split(",") if h.strip()]
        if "*" not in self._headers and any(h not in self._headers for h in asked):
            return []
        headers = self._origin_headers(origin)
        if asked:
            headers.append((b"access-control-allow-headers", ",".join(asked).encode()))
        headers.extend(self._preflight_tail)
        return headers

    def response_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """Headers to add to an actual response for a request from `origin`."""
        if not self.allows_origin(origin):
            return []
        assert origin is not None
        headers = self._origin_headers(origin)
        if self._expose:
            headers.append((b"access-control-expose-headers", self._expose))
        return headers

    def _origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        if self._any_origin and not self._credentials:
            return [(b"access-control-allow-origin", b"*")]
        headers = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"origin")]
        if self._credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    @staticmethod
    def strip(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """A function's response headers without its own `Access-Control-*` ones."""
        return [h for h in headers if not h[0].startswith(_CORS_PREFIX)]
