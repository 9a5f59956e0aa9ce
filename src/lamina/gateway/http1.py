"""The gateway's HTTP/1.1 front: httptools' parser on the event loop, calling the gateway.

uvicorn serves the gateway port: its `Server` binds, accepts, and shuts down gracefully. For
each connection it makes this protocol (`Config(http=Http1Protocol)`), which parses requests
with httptools (llhttp, as uvicorn's own protocol does) and hands each one, read in full, to
`GatewayApp.handle`, then writes the answer with one `send`. uvicorn's own protocol would turn
each request into an ASGI scope and messages and the answer back into bytes: on this project's
machine that was 44 µs of a core per request against 10 µs for a protocol that parses and
answers directly (see docs/benchmarks.md), on the thread that is the gateway's bottleneck.

What it keeps of an HTTP/1.1 server: keep-alive, with idle connections closed after
`timeout_keep_alive` seconds; pipelined requests answered in order (reading pauses while one
waits); `Expect: 100-continue`; chunked request bodies; a body over MAX_BODY_BYTES refused with
413 (read and thrown away up to DISCARD_BYTES, so the client sees the answer, not a reset);
`Connection: close` and HTTP/1.0; back-pressure from a client that does not read (reading
pauses); a malformed request answered 400 and the connection closed; on shutdown, idle
connections closed and busy ones closed after their answer. WebSocket upgrades are not served:
the request is answered as plain HTTP and the connection closed.
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

__all__ = ["Handler", "Http1Protocol"]

log = logging.getLogger(__name__)


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
        self.closing = False  # close once the request being answered is answered
        self.pipeline: deque[tuple[HttpRequest | _Refused, bool]] = deque()
        self.reading_paused = False
        self.writing_paused = False
        self.last_active = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        # the request being parsed
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.size = 0
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
            self.closing = True  # what follows the upgrade request is not HTTP/1.1
            if not self.busy:
                self._close()
        except httptools.HttpParserError as exc:
            self._bad_request(f"Invalid HTTP request received: {exc}")

    def eof_received(self) -> bool | None:
        return None  # close once the transport has written what is pending

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._flow()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when the request in hand is answered."""
        self.closing = True
        if not self.busy:
            self._close()

    def _check_idle(self) -> None:
        """Close a connection idle for `keep_alive_s`; else look again when it could be."""
        self.idle_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        left = self.keep_alive_s
        if not self.busy:
            left -= self.loop.time() - self.last_active
            if left <= 0:
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
        pause = bool(self.pipeline) or self.writing_paused
        if pause != self.reading_paused:
            self.reading_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def _bad_request(self, message: str) -> None:
        log.warning("bad HTTP request", extra={"client": self.client, "error": message})
        body = message.encode("latin-1", "replace")
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"%scontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n%s\r\n%s"
                % (STATUS_LINES[400], len(body), _CLOSE, body)
            )
        self.closing = True
        self.pipeline.clear()
        self._close()

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.body = []
        self.size = 0
        self.refused = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        expect = False
        for name, value in self.headers:
            if name == "content-length":
                if value.isdigit() and int(value) > MAX_BODY_BYTES:
                    self.refused = True
            elif name == "expect" and value.lower() == "100-continue":
                expect = True
        if not expect or self.busy or self.pipeline or self.transport is None:
            return  # a client that does not get its 100 sends the body after a moment
        if self.refused:
            self.closing = True  # answered at once; the client does not send the body
            self.on_message_complete()
        else:
            self.transport.write(CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.refused:
            if self.size > DISCARD_BYTES:
                self.closing = True
                self.on_message_complete()
            return
        if self.size > MAX_BODY_BYTES:
            self.refused = True
            self.body = []
            return
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if self.closing and (self.busy or self.transport is None or self.transport.is_closing()):
            return  # already answering the last request this connection takes
        parser = self.parser
        method = parser.get_method().decode("ascii")
        try:
            url = httptools.parse_url(self.url)
        except httptools.HttpParserInvalidURLError:
            self._bad_request(f"Invalid URL: {self.url[:200]!r}")
            return
        raw = url.path or b"/"
        try:
            path = raw.decode("ascii")
        except UnicodeDecodeError:
            path = raw.decode("utf-8", "replace")
        if "%" in path:
            path = unquote(path)
        version = parser.get_http_version()
        keep_alive = version != "1.0" and parser.should_keep_alive() and not self.closing
        item: HttpRequest | _Refused
        if self.refused:
            item = _Refused(method, path)
        else:
            body = self.body
            item = HttpRequest(
                method=method,
                path=path,
                raw_path=raw.decode("latin-1"),
                query_string=url.query.decode("latin-1") if url.query else "",
                headers=tuple(self.headers),
                body=body[0] if len(body) == 1 else b"".join(body),
                source_ip=self.client,
                protocol=f"HTTP/{version}",
            )
        if self.busy:
            self.pipeline.append((item, keep_alive))
            self._flow()
            return
        self._start(item, keep_alive)

    # -- answering ----------------------------------------------------------------------------

    def _start(self, item: HttpRequest | _Refused, keep_alive: bool) -> None:
        self.busy = True
        if isinstance(item, _Refused):
            self._answer(self.app.too_large(item.method, item.path), item.method, keep_alive)
            return
        task = self.loop.create_task(self._serve(item, keep_alive))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

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
        headers, body = framed(response, head=method == "HEAD")
        parts = [STATUS_LINES.get(response.status) or _status_line(response.status)]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        close = not keep_alive or self.closing
        if close:
            parts.append(_CLOSE)
        parts += (b"\r\n", body)
        transport.write(b"".join(parts))
        self.last_active = self.loop.time()
        if close:
            self.closing = True
            self.pipeline.clear()
            transport.close()
            return
        if self.pipeline:
            item, keep = self.pipeline.popleft()
            self._flow()
            self._start(item, keep)
