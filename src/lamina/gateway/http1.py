"""The gateway's HTTP/1.1 front: httptools' parser on the event loop, calling the gateway.

uvicorn serves the gateway port: its `Server` binds, accepts, and shuts down gracefully. For
each connection it makes this protocol (`Config(http=Http1Protocol)`), which parses requests
with httptools (llhttp, as uvicorn's own protocol does) and hands each one, read in full, to
`GatewayApp.handle`, then writes the answer with one `send`. uvicorn's own protocol would turn
each request into an ASGI scope and messages and the answer back into bytes: on this project's
machine that was 44 µs of a core per request against 10 µs for a protocol that parses and
answers directly (see docs/benchmarks.md), on the thread that is the gateway's bottleneck.

What it keeps of an HTTP/1.1 server:
- keep-alive, with a connection idle for `timeout_keep_alive` seconds closed, and one stalled
  in the middle of a request that long answered 408; so is a request whose head is not in
  within HEADERS_TIMEOUT_S of its first byte, or whose body is not within REQUEST_TIMEOUT_S,
  however steadily its bytes trickle in (a slow-loris client holds no connection for long);
- pipelined requests answered in order, reading paused while one waits; a malformed request
  behind others answered 400 in its turn, then the connection closed;
- `Expect: 100-continue` (HTTP/1.1); chunked request bodies; a client that half-closes after
  its request still gets the answer;
- a body over MAX_BODY_BYTES refused with 413, read and thrown away up to DISCARD_BYTES so the
  client sees the answer and not a reset (at once, and the connection closed, past that or
  when the client waits for a 100); a URL over MAX_URL_BYTES answered 414, headers over
  MAX_HEADER_BYTES 431, a malformed request 400, each closing the connection;
- `Connection: close` and HTTP/1.0; back-pressure from a client that does not read;
- on shutdown, idle connections closed and busy ones closed after the answer in hand.
Upgrades (WebSocket, h2c) are not served: the request is answered as plain HTTP/1.1 (400 if it
has a body, which the parser does not read) and the connection closed.
"""

from __future__ import annotations

import asyncio
import http
import logging
from collections import deque
from typing import Any, Protocol
from urllib.parse import unquote

import httptools

from lamina.gateway.asgi import DISCARD_BYTES, MAX_BODY_BYTES
from lamina.gateway.request import HttpRequest
from lamina.gateway.responses import HttpResponse, framed, json_error

__all__ = [
    "HEADERS_TIMEOUT_S",
    "MAX_HEADER_BYTES",
    "MAX_URL_BYTES",
    "REQUEST_TIMEOUT_S",
    "Handler",
    "Http1Protocol",
]

log = logging.getLogger(__name__)

MAX_URL_BYTES = 16 * 1024  # 414 past this
MAX_HEADER_BYTES = 64 * 1024  # all header names and values together; 431 past this
# From a request's first byte: its head must be in within this (Node.js's headersTimeout), all
# of it within REQUEST_TIMEOUT_S (its requestTimeout), else 408. Checked at least every
# keep-alive period.
HEADERS_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 300.0


class Handler(Protocol):
    """What the front serves (GatewayApp)."""

    async def handle(self, request: HttpRequest) -> HttpResponse: ...

    def too_large(self, method: str, path: str) -> HttpResponse: ...


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (code, phrase)


STATUS_LINES = {code: _status_line(code) for code in range(100, 600)}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE = b"connection: close\r\n"


class _Refused:
    """A request whose body was over the limit, in the pipeline in place of an HttpRequest."""

    __slots__ = ("method", "path")

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path


class _Bad:
    """A request answered by the front itself (400, 408, 414, 431), then the connection closes."""

    __slots__ = ("message", "status")

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


class _Oversize(Exception):
    """Raised from a parser callback when the URL or the headers are over their limit."""


_Item = HttpRequest | _Refused | _Bad


class Http1Protocol(asyncio.Protocol):
    """One client connection. Made by uvicorn's Server with its config and shared state."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any] | None = None,
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.app: Handler = config.app
        self.loop = _loop or asyncio.get_event_loop()
        self.keep_alive_s: float = config.timeout_keep_alive
        self.connections: set[Any] = server_state.connections  # waited for at shutdown
        self.tasks: set[asyncio.Task[None]] = server_state.tasks  # cancelled past the grace
        self.parser = httptools.HttpRequestParser(self)
        # answer the first of pipelined requests even when data follows a `Connection: close`
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self.busy = False  # a request is being answered
        self.closing = False  # take no more requests; close once the pipeline is answered
        self.pipeline: deque[tuple[_Item, bool]] = deque()  # (request, keep alive after it)
        self.reading_paused = False
        self.writing_paused = False
        self.last_active = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        # the request being parsed
        self.in_request = False
        self.began = 0.0  # when its first bytes came (loop time)
        self.head_read = False
        self.headers_timeout_s = HEADERS_TIMEOUT_S
        self.request_timeout_s = REQUEST_TIMEOUT_S
        self.url: list[bytes] = []
        self.head_size = 0  # bytes of URL and headers
        self.oversize: _Bad | None = None
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.declared = 0  # content-length, 0 when absent
        self.refused = False

    # -- connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) and peer else ""
        self.last_active = self.loop.time()
        self.idle_timer = self.loop.call_later(self.keep_alive_s, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.pipeline.clear()
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._stop_reading()  # what follows the upgrade request is not HTTP/1.1
        except httptools.HttpParserError as exc:
            bad = self.oversize or _Bad(400, f"Invalid HTTP request received: {exc}")
            self._refuse(bad)

    def eof_received(self) -> bool:
        """The client sent all it will (it may still read): answer what it asked, then close."""
        self._stop_reading()
        return True  # keep the transport open for the answers

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._flow()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when the request in hand is answered."""
        self.pipeline.clear()
        self._stop_reading()

    def _stop_reading(self) -> None:
        """Take no more requests; close once those taken are answered."""
        self.closing = True
        if not self.busy and not self.pipeline:
            self._close()
        else:
            self._flow()

    def _check_idle(self) -> None:
        """Close a connection idle for `keep_alive_s`, answering 408 when it stalled
        mid-request or the request in reading is past its time; else look again when it could
        be."""
        self.idle_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        left = self.keep_alive_s
        if not self.busy and not self.pipeline:
            now = self.loop.time()
            left -= now - self.last_active
            if self.in_request:
                limit = self.request_timeout_s if self.head_read else self.headers_timeout_s
                left = min(left, limit - (now - self.began))
            if left <= 0:
                if self.in_request:
                    self._refuse(_Bad(408, "Request Timeout"))
                else:
                    self._close()
                return
        self.idle_timer = self.loop.call_later(left, self._check_idle)

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _flow(self) -> None:
        """Read while nothing waits behind the request in hand and the client reads."""
        if self.transport is None or self.transport.is_closing():
            return
        pause = bool(self.pipeline) or self.writing_paused or self.closing
        if pause != self.reading_paused:
            self.reading_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def _refuse(self, bad: _Bad) -> None:
        """Answer `bad` in its turn, after what came before it, then close."""
        if self.closing and (self.busy or self.pipeline):
            return  # already closing after other answers; the parser stopped here
        log.warning(
            "bad HTTP request",
            extra={"client": self.client, "status": bad.status, "error": bad.message},
        )
        self._take(bad, keep_alive=False)
        self._stop_reading()

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_request = True
        self.began = self.last_active  # set by data_received, which is feeding the parser
        self.head_read = False
        self.url = []
        self.head_size = 0
        self.headers = []
        self.body = []
        self.size = 0
        self.declared = 0
        self.refused = False

    def on_url(self, url: bytes) -> None:
        self.url.append(url)
        self.head_size += len(url)
        if self.head_size > MAX_URL_BYTES:
            self.oversize = _Bad(414, f"URI Too Long: over {MAX_URL_BYTES} bytes")
            raise _Oversize

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        if self.head_size > MAX_HEADER_BYTES:
            self.oversize = _Bad(
                431, f"Request Header Fields Too Large: over {MAX_HEADER_BYTES} bytes"
            )
            raise _Oversize
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.head_read = True
        expect = False
        for name, value in self.headers:
            if name == "content-length":
                self.declared = int(value) if value.isdigit() else 0
                self.refused = self.declared > MAX_BODY_BYTES
            elif name == "expect" and value.lower() == "100-continue":
                expect = self.parser.get_http_version() == "1.1"
        if self.refused and (expect or self.declared > DISCARD_BYTES):
            self._take_early()  # the client waits for a 100, or the body is not worth reading
            return
        # A client that gets no 100 (its request waits behind others) sends the body anyway
        # after a moment.
        idle = not (self.busy or self.pipeline or self.closing)
        if expect and idle and self.transport is not None and not self.transport.is_closing():
            self.transport.write(CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.refused:
            if self.size > DISCARD_BYTES and not self.closing:
                self._take_early()
            return
        if self.size > MAX_BODY_BYTES:
            self.refused = True
            self.body = []
            return
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.in_request = False
        if self.closing:
            return  # answered early, or no more requests are taken
        parser = self.parser
        version = parser.get_http_version()
        upgrade = parser.should_upgrade()
        keep_alive = version != "1.0" and parser.should_keep_alive() and not upgrade
        if upgrade and (self.declared or any(n == "transfer-encoding" for n, _ in self.headers)):
            # the parser skipped the body
            self._take(_Bad(400, "an upgrade request with a body is not served"), False)
            return
        item = self._request(version)
        if item is not None:
            self._take(item, keep_alive)

    def _take_early(self) -> None:
        """Answer a refused body now, without reading it, and close after."""
        item = self._request(self.parser.get_http_version())
        if item is not None:
            self._take(item, keep_alive=False)
        self._stop_reading()

    def _request(self, version: str) -> _Item | None:
        """The request just parsed (a _Refused one past the body limit); None, answered 400,
        when its URL does not parse."""
        method = self.parser.get_method().decode("ascii")
        raw_url = self.url[0] if len(self.url) == 1 else b"".join(self.url)
        try:
            url = httptools.parse_url(raw_url)
        except httptools.HttpParserInvalidURLError:
            self._refuse(_Bad(400, f"Invalid URL: {raw_url[:200]!r}"))
            return None
        raw_path = (url.path or b"/").decode("latin-1")  # llhttp lets only ASCII through
        path = unquote(raw_path) if "%" in raw_path else raw_path
        if self.refused:
            return _Refused(method, path)
        body = self.body
        return HttpRequest(
            method=method,
            path=path,
            raw_path=raw_path,
            query_string=url.query.decode("latin-1") if url.query else "",
            headers=tuple(self.headers),
            body=body[0] if len(body) == 1 else b"".join(body),
            source_ip=self.client,
            protocol=f"HTTP/{version}",
        )

    # -- answering ----------------------------------------------------------------------------

    def _take(self, item: _Item, keep_alive: bool) -> None:
        """Answer `item` now, or after what is before it."""
        if self.busy or self.pipeline:
            self.pipeline.append((item, keep_alive))
            self._flow()
        else:
            self._start(item, keep_alive)

    def _start(self, item: _Item, keep_alive: bool) -> None:
        self.busy = True
        if isinstance(item, HttpRequest):
            task = self.loop.create_task(self._serve(item, keep_alive))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif isinstance(item, _Refused):
            self._answer(self.app.too_large(item.method, item.path), item.method, keep_alive)
        else:
            text = f"{item.message}\n".encode("latin-1", "replace")
            plain = [(b"content-type", b"text/plain; charset=utf-8")]
            self._answer(HttpResponse(item.status, plain, text), "", keep_alive=False)

    async def _serve(self, request: HttpRequest, keep_alive: bool) -> None:
        try:
            response = await self.app.handle(request)
        except asyncio.CancelledError:
            self.busy = False
            self._close()  # past the grace period at shutdown
            raise
        except Exception:
            log.exception("gateway error", extra={"method": request.method, "path": request.path})
            response = json_error(500, "Internal Server Error")
        self._answer(response, request.method, keep_alive)

    def _answer(self, response: HttpResponse, method: str, keep_alive: bool) -> None:
        self.busy = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        close = not keep_alive or (self.closing and not self.pipeline)
        try:
            data = _encode(response, head=method == "HEAD", close=close)
        except Exception:  # a header that is not bytes: the app's bug, not the client's
            log.exception("gateway error: unwritable response", extra={"method": method})
            data = _encode(json_error(500, "Internal Server Error"), head=False, close=close)
        transport.write(data)
        self.last_active = self.loop.time()
        if self.in_request:  # one read behind this answer: its time limits count from now
            self.began = self.last_active
        if close:
            self.closing = True
            self.pipeline.clear()
            transport.close()
        elif self.pipeline:
            item, keep = self.pipeline.popleft()
            self._flow()
            self._start(item, keep)


def _encode(response: HttpResponse, *, head: bool, close: bool) -> bytes:
    """The response as it goes on the wire."""
    headers, body = framed(response, head=head)
    parts = [STATUS_LINES.get(response.status) or _status_line(response.status)]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    if close:
        parts.append(_CLOSE)
    parts += (b"\r\n", body)
    return b"".join(parts)
