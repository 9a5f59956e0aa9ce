"""The floor: the same hello handler called in-process by a bare uvicorn ASGI app."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import uvicorn

sys.path.insert(0, str(Path(__file__).parent / "app" / "services" / "bench"))
from hello import handler


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = orjson.dumps(handler({}, None))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
