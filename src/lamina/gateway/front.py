"""The gateway's HTTP front: uvicorn's httptools protocol, writing each response once.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and the body with `http.response.body`: two `send()` calls on the
client's socket, and on loopback TCP each one also wakes the client to read half a response.
Here the connection's transport is corked for the rest of the event-loop step: what the
protocol writes in one step is joined and sent with one call once the step is over. A
response's start and body are sent in the same step (the gateway's app does not wait between
them), so each response costs one system call, and the latency it adds is none: the write
happens before the loop next waits for events.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lamina.errors import PlatformError

__all__ = ["CorkedTransport", "GatewayHttpProtocol"]


class CorkedTransport:
    """A transport whose writes within one event-loop step are joined into one write.

    Everything but writing and closing is the wrapped transport's own."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Send what was written in this step (called by the loop after the step)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def close(self) -> None:
        self.flush()  # a response followed by `Connection: close` still goes out first
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a corked transport (one write per response)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        corked = CorkedTransport(transport, self.loop)
        super().connection_made(corked)  # type: ignore[arg-type]


class GranianFront:
    """The gateway served by granian's embedded server (`lamina up --http granian`): HTTP
    parsing and the sockets' reads and writes run on granian's Rust threads, outside the
    GIL, and only the ASGI app runs on this event loop. On a machine where the gateway's
    thread is the bottleneck, that moves the system calls to another core.

    granian binds the listening socket itself (SO_REUSEPORT): the platform binds its own
    first (to pick a free port and to fail clearly when the port is taken), then closes it
    and hands granian the port. granian calls its embedded server experimental, so uvicorn
    stays the default; both run the whole gateway test suite."""

    def __init__(self, app: Any, host: str, port: int, threads: int = 1) -> None:
        try:
            from granian.constants import Interfaces
            from granian.server.embed import Server
        except ImportError as exc:  # pragma: no cover - granian is an optional dependency
            raise PlatformError(
                f'--http granian needs granian ({exc}): pip install "lamina[granian]"'
            ) from exc
        self._server = Server(
            app,
            address=host,
            port=port,
            interface=Interfaces.ASGINL,
            runtime_threads=threads,
            log_enabled=False,
            websockets=False,
        )

    async def serve(self) -> None:
        await self._server.serve()

    def stop(self) -> None:
        self._server.stop()  # type: ignore[no-untyped-call]
