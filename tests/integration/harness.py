"""Helpers for integration tests: an app on disk and the real platform on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from lamina.clock import Clock
from lamina.control import Platform, PlatformOptions
from lamina.manifest import load_app

HANDLERS = Path(__file__).parent / "handlers"
LAMINA = [sys.executable, "-m", "lamina"]


def write_app(
    directory: Path, functions: dict[str, dict[str, Any]], env: dict[str, str] | None = None
) -> Path:
    """An app with one service `svc` whose code is tests/integration/handlers."""
    manifest = {
        "app": "test",
        "services": {"svc": {"path": str(HANDLERS), "env": env or {}, "functions": functions}},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return directory


@contextlib.asynccontextmanager
async def run_platform(
    app_dir: Path, clock: Clock | None = None, rng: random.Random | None = None, **options: Any
) -> AsyncIterator[Platform]:
    if os.environ.get("LAMINA_TEST_HTTP"):
        options.setdefault("http", os.environ["LAMINA_TEST_HTTP"])
    opts = PlatformOptions(
        port=0, state_dir=app_dir / ".lamina", grace_s=options.pop("grace_s", 5.0), **options
    )
    platform = Platform(load_app(app_dir), opts, clock=clock, rng=rng)
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()


@contextlib.asynccontextmanager
async def client_for(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        yield client


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    gateway_url: str
    log: Path
    admin_url: str = ""

    def tree(self) -> list[psutil.Process]:
        """Every process the platform started (zygotes and instances), recursively."""
        return psutil.Process(self.process.pid).children(recursive=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def lamina_up(app: Path, *args: str, session: bool = False) -> Iterator[Up]:
    """Run `python -m lamina up APP --port 0 ARGS...`; wait for APP/.lamina/platform.json
    (a stale one left by a killed platform is removed first). With `session`, in a process
    group of its own, as a terminal runs a command (`os.killpg` then acts like Ctrl-C)."""
    log = app.parent / f"{app.name}-up.log"
    runtime = app / ".lamina" / "platform.json"
    runtime.unlink(missing_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*LAMINA, "up", str(app), "--port", "0", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=session,
        )
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 10
        info = None
        while info is None:  # a bounded poll: the file appears in another process
            assert process.poll() is None, f"lamina up exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no {runtime} after 10 s:\n{log.read_text()}"
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(runtime.read_bytes())
            time.sleep(0.02)
        up = Up(process, info["gateway_url"], log, info["admin_url"])
        yield up
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            tree = psutil.Process(process.pid).children(recursive=True)
        process.kill()
        process.wait(10)
        for proc in tree:  # only if a test failed half-way: leave nothing behind
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def free_port() -> int:
    """A loopback TCP port free right now (for a process that must be told its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a handler appended to `path` (none yet: [])."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def until(check: Callable[[], Any], what: str, deadline_s: float = 15) -> Any:
    """Bounded wait for an effect in another process (e.g. a file a handler writes), the last
    resort when there is no event to await; returns the first truthy result of `check`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert loop.time() < end, f"timed out after {deadline_s} s waiting for {what}"
        await asyncio.sleep(0.02)


async def send_event(platform: Platform, function_id: str, payload: dict[str, Any]) -> str:
    """An `Event` invocation through the Invoke API; returns the request id of the 202."""
    async with client_for(platform) as client:
        response = await client.post(
            f"/2015-03-31/functions/{function_id}/invocations",
            json=payload,
            headers={"X-Amz-Invocation-Type": "Event"},
        )
    assert response.status_code == 202, response.text
    return str(response.headers["x-amzn-requestid"])
