"""The floor: the benchmark handlers called in-process by a bare uvicorn ASGI app.

`/hello` and `/cpu` call their handler on the event loop (a thread would only add a hop: the
CPU-bound work holds the GIL either way); `/io` runs its blocking 20 ms sleep in a pool of 256
threads, so no load the benchmarks apply (up to 256 connections) waits for a thread.

    python benchmarks/bare_uvicorn.py PORT                # the floor: no access log
    python benchmarks/bare_uvicorn.py PORT --access-log   # uvicorn's default: a line a request
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import uvicorn

sys.path.insert(0, str(Path(__file__).parent / "app" / "services" / "bench"))
import busy
import hello
import sleepy

_IN_LOOP = {"/hello": hello.handler, "/cpu": busy.handler}
_threads = ThreadPoolExecutor(max_workers=256)


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/io":
        result = await asyncio.get_running_loop().run_in_executor(
            _threads, sleepy.handler, {}, None
        )
    elif path in _IN_LOOP:
        result = _IN_LOOP[path]({}, None)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps(result)})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        log_level="info" if "--access-log" in sys.argv[2:] else "warning",
        access_log="--access-log" in sys.argv[2:],
        lifespan="off",
    )
