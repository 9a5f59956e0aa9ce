"""The gateway's HTTP/1.1 front, fed bytes as a client would send them (no sockets)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from lamina.gateway import http1
from lamina.gateway.http1 import Http1Protocol
from lamina.gateway.request import HttpRequest
from lamina.gateway.responses import HttpResponse, json_error


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = asyncio.get_running_loop().create_future()
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed.done(), "written after close"
        self.written.append(bytes(data))

    def close(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def is_closing(self) -> bool:
        return self.closed.done()

    def pause_reading(self) -> None:
        assert self.reading
        self.reading = False

    def resume_reading(self) -> None:
        assert not self.reading
        self.reading = True

    def get_extra_info(self, name: str) -> Any:
        return ("10.1.2.3", 5555) if name == "peername" else None

    @property
    def data(self) -> bytes:
        return b"".join(self.written)


class FakeApp:
    """Answers 200 with `METHOD path` as the body; a request's answer can be held back."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.refused: list[tuple[str, str]] = []

    async def handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        gate = self.gates.get(request.path)
        if gate is not None:
            await gate.wait()
        if request.path == "/boom":
            raise RuntimeError("boom")
        body = f"{request.method} {request.path}".encode() + request.body
        return HttpResponse(200, [(b"content-type", b"text/plain")], body)

    def too_large(self, method: str, path: str) -> HttpResponse:
        self.refused.append((method, path))
        return json_error(413, "Request Entity Too Large")


async def _connect(app: FakeApp, keep_alive_s: float = 5) -> tuple[Http1Protocol, FakeTransport]:
    config = SimpleNamespace(app=app, timeout_keep_alive=keep_alive_s)
    state = SimpleNamespace(connections=set(), tasks=set())
    protocol = Http1Protocol(config, state, {})
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def _settle() -> None:
    """Let the answers in progress finish (the fake app awaits nothing but its gates)."""
    for _ in range(5):
        await asyncio.sleep(0)


def _responses(data: bytes) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Split what was written into (status line, headers, body) by content-length."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in lines)
        length = int(headers.get(b"content-length", b"0"))
        if status.startswith(b"HTTP/1.1 1") or b" 204 " in status or b" 304 " in status:
            length = 0
        out.append((status, headers, rest[:length]))
        data = rest[length:]
    return out


async def test_a_request_is_answered_in_one_write_with_its_length() -> None:
    app = FakeApp()
    protocol, transport = await _connect(app)
    protocol.data_received(
        b"GET /a%20b/c?x=1&y=%32 HTTP/1.1\r\nHost: h\r\nX-Thing: One\r\nx-thing: two\r\n\r\n"
    )
    await _settle()
    assert len(transport.written) == 1
    [(status, headers, body)] = _responses(transport.data)
    assert status == b"HTTP/1.1 200 OK"
    assert headers[b"content-length"] == b"10"
    assert body == b"GET /a b/c"
    [request] = app.requests
    assert request.method == "GET"
    assert request.path == "/a b/c"
    assert request.raw_path == "/a%20b/c"
    assert request.query_string == "x=1&y=%32"
    assert request.headers == (("host", "h"), ("x-thing", "One"), ("x-thing", "two"))
    assert request.source_ip == "10.1.2.3"
    assert request.protocol == "HTTP/1.1"
    assert not transport.is_closing()  # keep-alive


async def test_pipelined_requests_are_answered_in_order_one_at_a_time() -> None:
    app = FakeApp()
    app.gates["/first"] = asyncio.Event()
    protocol, transport = await _connect(app)
    protocol.data_received(b"GET /first HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\n\r\n")
    await _settle()
    assert [r.path for r in app.requests] == ["/first"]  # the second waits its turn
    assert not transport.reading  # and nothing more is read meanwhile
    assert transport.written == []
    app.gates["/first"].set()
    await _settle()
    assert [body for _, _, body in _responses(transport.data)] == [b"GET /first", b"GET /second"]
    assert transport.reading


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n", id="Connection: close"),
        pytest.param(b"GET /x HTTP/1.0\r\n\r\n", id="HTTP/1.0"),
    ],
)
async def test_a_connection_that_is_not_kept_alive_closes_after_its_answer(
    request_bytes: bytes,
) -> None:
    protocol, transport = await _connect(FakeApp())
    protocol.data_received(request_bytes)
    await transport.closed
    [(_status, headers, body)] = _responses(transport.data)
    assert headers[b"connection"] == b"close"
    assert body == b"GET /x"


async def test_head_names_the_length_without_sending_the_body() -> None:
    protocol, transport = await _connect(FakeApp())
    protocol.data_received(b"HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n")
    await _settle()
    assert transport.data.startswith(b"HTTP/1.1 200 OK\r\n")
    head, _, rest = transport.data.partition(b"\r\n\r\n")
    assert b"content-length: 7" in head  # len(b"HEAD /x")
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")  # the next answer follows at once


async def test_a_chunked_body_is_read_in_full() -> None:
    app = FakeApp()
    protocol, transport = await _connect(app)
    protocol.data_received(b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    protocol.data_received(b"2\r\nde\r\n0\r\n\r\n")
    await _settle()
    assert app.requests[0].body == b"abcde"
    assert _responses(transport.data)[0][2] == b"POST /pabcde"


async def test_a_body_over_the_limit_is_refused_and_the_connection_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http1, "MAX_BODY_BYTES", 10)
    app = FakeApp()
    protocol, transport = await _connect(app)
    protocol.data_received(b"POST /big HTTP/1.1\r\nContent-Length: 20\r\n\r\n" + b"x" * 20)
    protocol.data_received(b"GET /next HTTP/1.1\r\n\r\n")
    await _settle()
    statuses = [status for status, _, _ in _responses(transport.data)]
    assert statuses == [b"HTTP/1.1 413 Request Entity Too Large", b"HTTP/1.1 200 OK"]
    assert app.refused == [("POST", "/big")]
    assert [r.path for r in app.requests] == ["/next"]  # the refused one never reached it


async def test_a_chunked_body_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "MAX_BODY_BYTES", 10)
    app = FakeApp()
    protocol, transport = await _connect(app)
    chunk = b"8\r\n" + b"x" * 8 + b"\r\n"
    protocol.data_received(b"POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
    protocol.data_received(chunk + b"0\r\n\r\n")
    await _settle()
    assert _responses(transport.data)[0][0] == b"HTTP/1.1 413 Request Entity Too Large"
    assert app.requests == []


async def test_a_body_past_what_is_worth_discarding_is_refused_at_once_and_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http1, "MAX_BODY_BYTES", 10)
    monkeypatch.setattr(http1, "DISCARD_BYTES", 30)
    protocol, transport = await _connect(FakeApp())
    protocol.data_received(b"POST /big HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + b"x" * 40)
    await transport.closed
    [(status, headers, _)] = _responses(transport.data)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert headers[b"connection"] == b"close"


async def test_expect_100_continue_is_answered_before_the_body_comes() -> None:
    app = FakeApp()
    protocol, transport = await _connect(app)
    protocol.data_received(b"POST /p HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert transport.data == b"HTTP/1.1 100 Continue\r\n\r\n"
    protocol.data_received(b"ok")
    await _settle()
    assert _responses(transport.data)[1][2] == b"POST /pok"


async def test_expect_100_continue_with_a_body_over_the_limit_is_refused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http1, "MAX_BODY_BYTES", 10)
    protocol, transport = await _connect(FakeApp())
    protocol.data_received(b"PUT /p HTTP/1.1\r\nContent-Length: 99\r\nExpect: 100-continue\r\n\r\n")
    await transport.closed  # the client never sends the body, so nothing waits for it
    [(status, _, _)] = _responses(transport.data)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"


async def test_a_malformed_request_is_answered_400_and_closed() -> None:
    protocol, transport = await _connect(FakeApp())
    protocol.data_received(b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n")
    await transport.closed
    [(status, headers, body)] = _responses(transport.data)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert headers[b"connection"] == b"close"
    assert body.startswith(b"Invalid HTTP request received")


async def test_a_gateway_error_is_a_500_and_the_connection_goes_on() -> None:
    protocol, transport = await _connect(FakeApp())
    protocol.data_received(b"GET /boom HTTP/1.1\r\n\r\nGET /ok HTTP/1.1\r\n\r\n")
    await _settle()
    answers = _responses(transport.data)
    assert [status for status, _, _ in answers] == [
        b"HTTP/1.1 500 Internal Server Error",
        b"HTTP/1.1 200 OK",
    ]


async def test_shutdown_closes_an_idle_connection_at_once() -> None:
    protocol, transport = await _connect(FakeApp())
    protocol.shutdown()
    assert transport.is_closing()
    assert transport.data == b""


async def test_shutdown_lets_the_request_in_hand_finish_then_closes() -> None:
    app = FakeApp()
    app.gates["/slow"] = asyncio.Event()
    protocol, transport = await _connect(app)
    protocol.data_received(b"GET /slow HTTP/1.1\r\n\r\nGET /later HTTP/1.1\r\n\r\n")
    await _settle()
    protocol.shutdown()
    assert not transport.is_closing()
    app.gates["/slow"].set()
    await transport.closed
    [(_status, headers, body)] = _responses(transport.data)  # /later is not started
    assert body == b"GET /slow"
    assert headers[b"connection"] == b"close"


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    app = FakeApp()
    protocol, transport = await _connect(app, keep_alive_s=0.05)
    protocol.data_received(b"GET /x HTTP/1.1\r\n\r\n")
    loop = asyncio.get_running_loop()
    answered = loop.time()
    await transport.closed
    assert loop.time() - answered >= 0.04
    assert _responses(transport.data)[0][2] == b"GET /x"


async def test_a_busy_connection_outlives_the_keep_alive_timeout() -> None:
    app = FakeApp()
    app.gates["/slow"] = asyncio.Event()
    protocol, transport = await _connect(app, keep_alive_s=0.01)
    protocol.data_received(b"GET /slow HTTP/1.1\r\n\r\n")
    done, _ = await asyncio.wait([transport.closed], timeout=0.05)
    assert not done  # still answering
    app.gates["/slow"].set()
    await transport.closed  # then idle, and closed
    assert _responses(transport.data)[0][2] == b"GET /slow"


async def test_reading_pauses_while_the_client_does_not_read() -> None:
    protocol, transport = await _connect(FakeApp())
    protocol.pause_writing()
    assert not transport.reading
    protocol.resume_writing()
    assert transport.reading


async def test_an_answer_for_a_client_that_left_is_dropped() -> None:
    app = FakeApp()
    app.gates["/slow"] = asyncio.Event()
    protocol, transport = await _connect(app)
    protocol.data_received(b"GET /slow HTTP/1.1\r\n\r\n")
    await _settle()
    transport.close()
    protocol.connection_lost(None)
    app.gates["/slow"].set()
    await _settle()
    assert transport.data == b""


async def test_a_client_that_half_closes_after_its_request_still_gets_the_answer() -> None:
    app = FakeApp()
    app.gates["/slow"] = asyncio.Event()
    protocol, transport = await _connect(app)
    protocol.data_received(b"GET /slow HTTP/1.1\r\n\r\n")
    assert protocol.eof_received() is True  # the transport stays open for the answer
    await _settle()
    assert not transport.is_closing()
    app.gates["/slow"].set()
    await transport.closed
    [(status, headers, body)] = _responses(transport.data)
    assert (status, body) == (b"HTTP/1.1 200 OK", b"GET /slow")
    assert headers[b"connection"] == b"close"


async def test_end_of_input_on_an_idle_connection_closes_it() -> None:
    protocol, transport = await _connect(FakeApp())
    protocol.eof_received()
    assert transport.is_closing()


async def test_a_malformed_request_behind_another_is_answered_in_its_turn() -> None:
    app = FakeApp()
    app.gates["/slow"] = asyncio.Event()
    protocol, transport = await _connect(app)
    protocol.data_received(b"GET /slow HTTP/1.1\r\n\r\n")
    await _settle()
    protocol.data_received(b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n")
    assert transport.written == []  # the 400 does not overtake the answer in hand
    app.gates["/slow"].set()
    await transport.closed
    answers = _responses(transport.data)
    assert [(status, body[:7]) for status, _, body in answers] == [
        (b"HTTP/1.1 200 OK", b"GET /sl"),
        (b"HTTP/1.1 400 Bad Request", b"Invalid"),
    ]
    assert b"connection" not in answers[0][1]
    assert answers[1][1][b"connection"] == b"close"


async def test_an_upgrade_request_is_answered_as_plain_http_and_the_connection_closed() -> None:
    app = FakeApp()
    app.gates["/slow"] = asyncio.Event()
    protocol, transport = await _connect(app)
    protocol.data_received(b"GET /slow HTTP/1.1\r\n\r\n")
    protocol.data_received(
        b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
    )
    app.gates["/slow"].set()
    await transport.closed
    answers = _responses(transport.data)
    assert [body for _, _, body in answers] == [b"GET /slow", b"GET /ws"]
    assert answers[1][1][b"connection"] == b"close"


async def test_an_upgrade_request_with_a_body_is_refused() -> None:
    app = FakeApp()
    protocol, transport = await _connect(app)
    protocol.data_received(
        b"POST /p HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\nhello"
    )
    await transport.closed
    [(status, _, _)] = _responses(transport.data)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert app.requests == []  # never handed on without its body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n\r\n", 414, id="URL"),
        pytest.param(
            b"GET / HTTP/1.1\r\n" + b"x-a: " + b"b" * 200 + b"\r\n\r\n", 431, id="headers"
        ),
    ],
)
async def test_a_request_head_over_its_limit_is_refused_and_closed(
    monkeypatch: pytest.MonkeyPatch, request_bytes: bytes, status: int
) -> None:
    monkeypatch.setattr(http1, "MAX_URL_BYTES", 100)
    monkeypatch.setattr(http1, "MAX_HEADER_BYTES", 150)
    app = FakeApp()
    protocol, transport = await _connect(app)
    for i in range(0, len(request_bytes), 16):  # as it may arrive: in pieces
        if not transport.is_closing():
            protocol.data_received(request_bytes[i : i + 16])
    await transport.closed
    [(line, headers, _)] = _responses(transport.data)
    assert line.startswith(b"HTTP/1.1 %d " % status)
    assert headers[b"connection"] == b"close"
    assert app.requests == []


async def test_an_http_1_0_client_gets_no_100_continue() -> None:
    app = FakeApp()
    protocol, transport = await _connect(app)
    protocol.data_received(b"POST /p HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert transport.written == []
    protocol.data_received(b"ok")
    await transport.closed
    [(_, _, body)] = _responses(transport.data)
    assert body == b"POST /pok"


async def test_a_request_stalled_halfway_is_answered_408_after_the_keep_alive_timeout() -> None:
    app = FakeApp()
    protocol, transport = await _connect(app, keep_alive_s=0.05)
    protocol.data_received(b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nhalf")
    await transport.closed
    [(status, headers, _)] = _responses(transport.data)
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert headers[b"connection"] == b"close"
    assert app.requests == []


async def _trickle(protocol: Http1Protocol, transport: FakeTransport, head: bytes) -> float:
    """Send `head`, then a byte every 5 ms (never idle for the keep-alive timeout) until the
    connection closes; how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    protocol.data_received(head)
    while not transport.closed.done():
        assert loop.time() - started < 5, "the trickling request was never cut off"
        protocol.data_received(b"a")
        await asyncio.sleep(0.005)
    return loop.time() - started


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"GET /x HTTP/1.1\r\nX-Slow: ", id="a head that never ends"),
        pytest.param(
            b"POST /p HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", id="a body that never ends"
        ),
    ],
)
async def test_a_request_trickling_in_is_answered_408_at_its_time_limit(head: bytes) -> None:
    app = FakeApp()
    # keep-alive past both limits: the first check comes after them, with room for a stall
    protocol, transport = await _connect(app, keep_alive_s=0.3)
    protocol.headers_timeout_s = 0.1
    protocol.request_timeout_s = 0.2
    took = await _trickle(protocol, transport, head)
    [(status, headers, _)] = _responses(transport.data)
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert headers[b"connection"] == b"close"
    limit = 0.1 if b"\r\n\r\n" not in head else 0.2
    assert limit <= took < limit + 1.0
    assert app.requests == []


async def test_a_request_read_slowly_within_its_limits_is_served() -> None:
    app = FakeApp()
    protocol, transport = await _connect(app, keep_alive_s=1.0)
    protocol.headers_timeout_s = protocol.request_timeout_s = 5.0
    for part in (b"POST /p HTTP/1.1\r\n", b"Content-Length: 2\r\n", b"\r\n", b"o", b"k"):
        protocol.data_received(part)
        await asyncio.sleep(0.1)  # well under the keep-alive timeout between parts
    await _settle()
    [(status, _, body)] = _responses(transport.data)
    assert (status, body) == (b"HTTP/1.1 200 OK", b"POST /pok")


async def test_the_limits_count_from_a_requests_first_byte_not_from_the_connection() -> None:
    """A connection kept alive past the head limit, then a request in two parts: served."""
    app = FakeApp()
    protocol, transport = await _connect(app, keep_alive_s=2.0)
    protocol.headers_timeout_s = protocol.request_timeout_s = 0.2
    protocol.data_received(b"GET /a HTTP/1.1\r\n\r\n")
    await _settle()
    await asyncio.sleep(0.4)  # idle, within keep-alive, past both limits
    protocol.data_received(b"GET /b HTTP/1.1\r\n")
    await asyncio.sleep(0.05)
    protocol.data_received(b"\r\n")
    await _settle()
    assert [body for _, _, body in _responses(transport.data)] == [b"GET /a", b"GET /b"]


async def test_a_request_read_behind_a_long_answer_is_timed_from_that_answer() -> None:
    """The head of the next request comes in part while a long function runs; the time it
    waited behind that answer does not count against it."""
    app = FakeApp()
    app.gates["/long"] = asyncio.Event()
    protocol, transport = await _connect(app, keep_alive_s=2.0)
    protocol.headers_timeout_s = protocol.request_timeout_s = 0.2
    protocol.data_received(b"GET /long HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n")
    await asyncio.sleep(0.4)  # the long one runs past the next one's head limit
    app.gates["/long"].set()
    await _settle()
    protocol._check_idle()  # as the idle timer would, now that the long one is answered
    protocol.data_received(b"\r\n")  # the rest of the next one's head
    await _settle()
    assert [body for _, _, body in _responses(transport.data)] == [b"GET /long", b"GET /next"]
