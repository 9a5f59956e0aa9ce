"""Small ASGI helpers shared by the gateway's two front doors (routes and the Invoke API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from lamina.gateway.request import HttpRequest
from lamina.gateway.responses import HttpResponse, framed

__all__ = ["MAX_BODY_BYTES", "BodyTooLarge", "read_request", "send_response"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 6 * 1024 * 1024  # API Gateway's and Lambda's request payload limit


class BodyTooLarge(Exception):
    """The request body is over MAX_BODY_BYTES."""


# A refused body is still read, up to this much, and thrown away: a client that is still
# sending when the 413 goes out would otherwise see its connection reset, not the answer.
DISCARD_BYTES = 4 * MAX_BODY_BYTES


async def _discard_body(receive: Receive, size: int) -> None:
    if size > DISCARD_BYTES:
        return  # not worth reading: the connection closes after the 413
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return


async def read_request(scope: Scope, receive: Receive) -> HttpRequest:
    """Read the whole request; raises BodyTooLarge past the limit without reading it all."""
    headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
    for name, value in headers:
        if name == "content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            await _discard_body(receive, int(value))
            raise BodyTooLarge
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            body = body + chunk if body else chunk
            if len(body) > MAX_BODY_BYTES:
                if message.get("more_body", False):
                    await _discard_body(receive, DISCARD_BYTES)
                raise BodyTooLarge
        more = message.get("more_body", False)
    client = scope.get("client")
    query = scope.get("query_string", b"").decode("latin-1")
    raw_path = scope.get("raw_path")
    return HttpRequest(
        method=scope["method"],
        path=scope["path"],
        raw_path=raw_path.decode("latin-1") if raw_path else scope["path"],
        query_string=query,
        headers=headers,
        body=body,
        source_ip=client[0] if client else "",
        protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        scheme=scope.get("scheme", "http"),
    )


async def send_response(send: Send, response: HttpResponse, *, head: bool = False) -> None:
    """Send `response` as `framed` makes it (an ASGI server leaves out a HEAD answer's body)."""
    headers, body = framed(response, head=head)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
