"""The gateway served by granian instead of uvicorn (`lamina up --http granian`)."""

from __future__ import annotations

from typing import Any

from lamina.errors import PlatformError

__all__ = ["GranianFront"]


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
