"""Handlers for the limits, scaling and lifecycle tests, and the `Gate` that holds them.

A gated handler connects to a TCP port the test listens on, says which process it runs in,
and blocks until the test releases it. The test thereby knows, without sleeping, that an
invocation is running (and where), and decides when it finishes.
"""

import asyncio
import json
import os
import socket
import sys
import threading

RELEASE = b"go"

INIT_COUNT_FILE = os.environ.get("INIT_COUNT_FILE")
if INIT_COUNT_FILE:  # lets a test see in which processes module-level code ran
    with open(INIT_COUNT_FILE, "a") as f:
        f.write(f"{os.getpid()}\n")


def _body(event):
    return json.loads(event["body"]) if event.get("body") else event


def _arrival(context):
    return f"{os.getpid()} {context.aws_request_id}\n".encode()


def gated(event, context):
    """Waits at the test's gate (payload `{"gate": port}`), then returns its pid."""
    port = _body(event)["gate"]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_arrival(context))
        if sock.recv(len(RELEASE)) != RELEASE:
            raise RuntimeError("the gate closed without releasing this invocation")
    return {"pid": os.getpid(), "request_id": context.aws_request_id}


async def gated_async(event, context):
    """`gated` as an `async def` handler: several may wait at once on one instance."""
    port = _body(event)["gate"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_arrival(context))
        await writer.drain()
        if await reader.read(len(RELEASE)) != RELEASE:
            raise RuntimeError("the gate closed without releasing this invocation")
    finally:
        writer.close()
        await writer.wait_closed()
    return {"pid": os.getpid(), "request_id": context.aws_request_id}


def hang(event, context):
    """Never returns by itself: only the platform's timeout ends it."""
    threading.Event().wait()


def talk(event, context):
    """Writes one line to stdout and one to stderr."""
    word = _body(event)["word"]
    print(f"out {word}")
    print(f"err {word}", file=sys.stderr)
    return {"pid": os.getpid()}


def pid(event, context):
    return {"pid": os.getpid()}


def echo(event, context):
    return {"echo": event}


def fail(event, context):
    raise ValueError("this function fails on purpose")


class Gate:
    """The test's side: `await gate.arrivals(n)` pids of waiting invocations, `open()` them.

    Use as `async with Gate() as gate:`; its `port` goes into the handler's payload. Once
    opened, the gate lets later arrivals through at once.
    """

    def __init__(self) -> None:
        self.port = 0
        self.pids: list[int] = []
        self._server = None
        self._writers = []
        self._open = False
        self._arrived = None

    async def __aenter__(self):
        self._arrived = asyncio.Condition()
        self._server = await asyncio.start_server(self._on_arrival, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        for writer in self._writers:
            writer.close()
        self._server.close()
        await self._server.wait_closed()

    async def _on_arrival(self, reader, writer) -> None:
        line = await reader.readline()
        pid = int(line.split()[0])
        self._writers.append(writer)
        if self._open:
            writer.write(RELEASE)
        async with self._arrived:
            self.pids.append(pid)
            self._arrived.notify_all()

    async def arrivals(self, count: int, timeout: float = 10.0) -> list[int]:
        """Wait until `count` invocations have reached the gate; their pids, in order."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.pids) >= count)
        return list(self.pids)

    def open(self) -> None:
        """Release every waiting invocation and let later ones pass."""
        self._open = True
        for writer in self._writers:
            if not writer.is_closing():
                writer.write(RELEASE)


def whoami(event, context):
    """The instance's pid, process name (as `ps` shows it) and memory cgroup (v1 or v2)."""
    with open("/proc/self/comm") as f:
        name = f.read().strip()
    cgroup = ""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _id, controllers, path = line.strip().split(":", 2)
            if "memory" in controllers.split(",") or (_id == "0" and not cgroup):
                cgroup = path
    return {"pid": os.getpid(), "name": name, "cgroup": cgroup}


def behind(event, context):
    """For the tests of invocations sent behind another: `{"hang": true}` never returns;
    `{"gate": port}` waits at the gate, then (with `"crash": true`) exits the process;
    otherwise (or after the gate) returns its pid and the time it has left."""
    body = _body(event)
    if body.get("hang"):
        threading.Event().wait()
    if "gate" in body:
        gated(event, context)
        if body.get("crash"):
            os._exit(3)
    return {
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
