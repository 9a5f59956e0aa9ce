"""The HTTP request as the gateway sees it, independent of the ASGI server."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HttpRequest"]


@dataclass(slots=True)  # not frozen: built on every request, frozen __init__ is slower
class HttpRequest:
    """One HTTP request, already read in full.

    `path` is percent-decoded (ASGI `scope["path"]`), `raw_path` is as sent on the wire without
    the query string, `query_string` is the raw bytes after `?` decoded as latin-1.
    Header names are lower-case, in arrival order, repeats kept.
    """

    method: str  # upper-case, e.g. "GET"
    path: str
    raw_path: str
    query_string: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str  # client address, "" when unknown
    protocol: str  # e.g. "HTTP/1.1"
    scheme: str = "http"

    def header(self, name: str) -> str | None:
        """The first value of header `name` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None
