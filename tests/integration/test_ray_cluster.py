"""A real two-node Ray cluster on this machine (`ray start --head` and `ray start --address`,
one CPU each): Ray places a function's instances on both nodes, and when a node dies mid-load
its invocation fails with 502 while the next one is served on the node that is left."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from handlers.ops import Gate
from harness import lamina_up

RAY = str(Path(sys.executable).with_name("ray"))

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def ray_node(log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`ray start --block ARGS` in a process group of its own, running until the test ends (or
    kills it); waits until the node has joined. SIGKILL to the group leaves nothing behind."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [RAY, "start", "--block", "--disable-usage-stats", "--num-cpus", "1", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while b"Ray runtime started" not in log.read_bytes():  # another process: bounded poll
            assert process.poll() is None, f"ray start exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no Ray node after 60 s:\n{log.read_text()}"
            time.sleep(0.1)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@contextlib.contextmanager
def two_nodes(tmp: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A head node and a worker node; yields the cluster address and the worker's process.
    The cluster's files go to a folder of its own (short: Ray puts Unix sockets in it), not
    /tmp/ray, where `ray.init()` elsewhere could find it."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    files = Path(tempfile.mkdtemp(prefix="lamina-ray-"))
    head_args = ["--head", "--port", str(port), "--node-ip-address", "127.0.0.1"]
    head_args += ["--temp-dir", str(files), "--include-dashboard", "false"]
    with (
        ray_node(tmp / "head.log", *head_args),
        ray_node(
            tmp / "worker.log", "--address", address, "--node-ip-address", "127.0.0.1"
        ) as worker,
    ):
        yield address, worker
    shutil.rmtree(files, ignore_errors=True)


def _status(app: Path) -> dict[str, Any]:
    info = json.loads((app / ".lamina" / "platform.json").read_bytes())
    token = (app / ".lamina" / "admin-token").read_text().strip()
    response = httpx.get(
        f"{info['admin_url']}/status", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    [function] = response.json()["functions"]
    return dict(function)


async def test_instances_run_on_both_nodes_and_a_node_lost_mid_load_fails_only_its_invocation(
    app_dir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private test cluster: no token to share between its nodes and `lamina up` (a Ray driver
    # in this process, such as the session's, sets RAY_AUTH_MODE=token for its children).
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    app = app_dir(
        {
            "fn": {
                "handler": "ops.gated",
                "cpu": 1,  # one instance fills a node
                "max_instances": 2,
                "timeout": 60,
                "events": [{"http": "POST /fn"}],
            }
        }
    )
    with (
        two_nodes(tmp_path) as (address, worker),
        lamina_up(app, "--executor", "ray", "--ray-address", address) as up,
    ):
        async with (
            httpx.AsyncClient(base_url=up.gateway_url, timeout=60) as client,
            Gate() as gate,
            asyncio.TaskGroup() as tasks,
        ):
            calls = [
                tasks.create_task(client.post("/fn", json={"gate": gate.port})) for _ in range(2)
            ]
            pids = await gate.arrivals(2, timeout=60)
            placed = await asyncio.to_thread(_status, app)
            worker_pids = {p.pid for p in psutil.Process(worker.pid).children(True)}
            on_worker = [pid for pid in pids if pid in worker_pids]
            os.killpg(worker.pid, signal.SIGKILL)  # the worker node dies mid-invocation
            lost = await calls[pids.index(on_worker[0])] if on_worker else None
            gate.open()
            kept = await calls[1 - pids.index(on_worker[0])] if on_worker else None
            after = await client.post("/fn", json={"gate": gate.port})
    nodes = {instance["node_id"] for instance in placed["placement"]}
    assert len(nodes) == 2, f"instances were not spread over both nodes: {placed}"
    assert len(on_worker) == 1, "exactly one instance must run on the worker node"
    assert lost is not None and lost.status_code == 502
    assert lost.headers["x-lamina-error"] == "Runtime.ExitError"
    assert "Ray actor died" in lost.headers["x-lamina-error-message"]
    assert kept is not None and kept.status_code == 200
    assert after.status_code == 200, "the node left must serve the next invocation"
