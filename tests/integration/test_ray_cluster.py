"""A real two-node Ray cluster on this machine (`ray start --head` and `ray start --address`,
one CPU each): Ray places a function's instances on both nodes, and when a node dies mid-load
its invocation fails with 502 while the next one is served on the node that is left; under
sustained load from several clients, every accepted asynchronous event and queue message is
still processed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
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
from harness import free_port, jsonl, lamina_up, until

RAY = str(Path(sys.executable).with_name("ray"))

pytestmark = pytest.mark.timeout(120)


@contextlib.contextmanager
def ray_node(log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`ray start --block ARGS` in a process group of its own, running until the test ends (or
    kills it); waits until the node has joined."""
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
        kill_node(process)
        process.wait(10)


def kill_node(node: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process of a node, as if its machine were lost: its process group, and
    the workers (and the instances they run) that Ray starts in process groups of their own."""
    tree: list[psutil.Process] = []
    with contextlib.suppress(psutil.NoSuchProcess):
        tree = psutil.Process(node.pid).children(recursive=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


@contextlib.contextmanager
def two_nodes(tmp: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A head node and a worker node; yields the cluster address and the worker's process.
    The cluster's files go to a folder of its own (short: Ray puts Unix sockets in it), not
    /tmp/ray, where `ray.init()` elsewhere could find it."""
    port = free_port()
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


def _admin(app: Path) -> httpx.AsyncClient:
    """A client of the admin API of the platform running `app`."""
    info = json.loads((app / ".lamina" / "platform.json").read_bytes())
    token = (app / ".lamina" / "admin-token").read_text().strip()
    return httpx.AsyncClient(
        base_url=info["admin_url"], headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def _arrivals(gate: Gate, calls: list[asyncio.Task[httpx.Response]], tmp: Path) -> list[int]:
    """The pids of both gated invocations once they are at the gate; when a call ends first or
    they are not both there within 90 s, a failure that shows the replies and the logs (of the
    platform and of both nodes)."""
    arrived = asyncio.ensure_future(gate.arrivals(2, timeout=90))
    await asyncio.wait([arrived, *calls], return_when=asyncio.FIRST_COMPLETED)
    if arrived.done() and not arrived.exception():
        return arrived.result()
    arrived.cancel()
    replies = [f"{c.result().status_code} {c.result().headers}" for c in calls if c.done()]
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in tmp.glob("*.log"))
    raise AssertionError(
        f"{len(gate.pids)} of 2 invocations reached their instance; replies {replies}\n{logs}"
    )


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
            pids = await _arrivals(gate, calls, tmp_path)
            placed = await asyncio.to_thread(_status, app)
            worker_pids = {p.pid for p in psutil.Process(worker.pid).children(True)}
            on_worker = [pid for pid in pids if pid in worker_pids]
            kill_node(worker)  # the worker node dies mid-invocation
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


def _node_pids(node: subprocess.Popen[bytes]) -> set[int]:
    """Every process of a Ray node: its raylet, workers, and the instances they forked."""
    return {p.pid for p in psutil.Process(node.pid).children(recursive=True)}


async def test_a_node_lost_under_sustained_load_fails_its_sync_calls_and_loses_no_event(
    app_dir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    work_log = tmp_path / "work.jsonl"
    app = app_dir(
        {
            "work": {
                "handler": "under_load.work",
                "cpu": 0.5,  # four instances fill the two one-CPU nodes: two on each
                "min_instances": 4,
                "max_instances": 4,
                "timeout": 30,
                "async": {"max_retries": 2, "backoff": 0.5},
                "events": [
                    {"http": "POST /work"},
                    {"queue": {"name": "jobs", "batch_size": 1, "visibility_timeout": 2}},
                ],
            }
        },
        env={"WORK_LOG": str(work_log)},
    )
    replies: list[httpx.Response] = []
    events: list[str] = []  # request ids of accepted asynchronous invocations
    jobs: list[str] = []  # bodies (unique) of accepted queue messages
    killed = asyncio.Event()
    stop = asyncio.Event()

    async def caller(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            replies.append(await client.post("/work", json={"after_kill": killed.is_set()}))

    async def event_sender(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            response = await client.post(
                "/2015-03-31/functions/svc.work/invocations",
                json={"n": len(events)},
                headers={"X-Amz-Invocation-Type": "Event"},
            )
            assert response.status_code == 202, response.text
            events.append(response.headers["x-amzn-requestid"])
            await asyncio.sleep(0.05)

    async def job_sender(admin: httpx.AsyncClient) -> None:
        while not stop.is_set():
            body = f"job-{len(jobs)}"
            response = await admin.post("/queues/jobs/messages", json={"body": body})
            assert response.status_code < 300, response.text
            jobs.append(body)
            await asyncio.sleep(0.05)

    def processed(done: bool = True) -> dict[str, set[int]]:
        """Event id -> the processes that finished it (with `done`), or that started it."""
        seen: dict[str, set[int]] = {}
        for entry in jsonl(work_log):
            if entry["done"] == done:
                seen.setdefault(entry["id"], set()).add(entry["pid"])
        return seen

    def running_on_worker() -> set[str]:
        finished = processed()
        return {
            key
            for key, pids in processed(done=False).items()
            if pids & worker_pids and not finished.get(key, set()) & worker_pids
        }

    def served_after_kill() -> list[int]:
        return [
            r.json()["pid"]
            for r in replies
            if r.status_code == 200 and json.loads(r.request.content)["after_kill"]
        ]

    with (
        two_nodes(tmp_path) as (address, worker),
        lamina_up(app, "--executor", "ray", "--ray-address", address) as up,
    ):
        async with (
            httpx.AsyncClient(base_url=up.gateway_url, timeout=30) as client,
            _admin(app) as admin,
        ):
            placed = await until(
                lambda: len((s := _status(app)).get("placement", [])) == 4 and s,
                "four instances",
                45,
            )
            worker_pids = _node_pids(worker)
            async with asyncio.TaskGroup() as load:
                load.create_task(event_sender(client))
                load.create_task(job_sender(admin))
                for _ in range(3):
                    load.create_task(caller(client))
                # The load reaches the worker node: events are running there (for 0.3 s each).
                caught = await until(running_on_worker, "an event running on the worker node", 20)
                kill_node(worker)  # the worker node dies under load
                killed.set()
                await until(
                    lambda: len(served_after_kill()) >= 10, "10 calls served after the kill", 20
                )
                stop.set()
            # Every event and message accepted, before or after the kill, is processed.
            done = await until(
                lambda: (seen := processed()).keys() >= {*events, *jobs} and seen,
                "every accepted event and message to be processed",
                30,
            )
            dead_letters = (await admin.get("/dlq")).json()

            async def crashed_attempts() -> list[dict[str, Any]]:
                response = await admin.get("/invocations", params={"status": "crashed"})
                return list(response.json())

            # Records reach the store in batches: the ones the kill failed appear shortly.
            lost = await until(crashed_attempts, "records of the invocations the kill failed")
    nodes = {instance["node_id"] for instance in placed["placement"]}
    assert len(nodes) == 2, f"instances were not spread over both nodes: {placed}"
    for reply in replies:  # a sync call either succeeds or fails as its node died
        assert reply.status_code in (200, 502), reply.text
        if reply.status_code == 502:
            assert reply.headers["x-lamina-error"] == "Runtime.ExitError"
            assert "Ray actor died" in reply.headers["x-lamina-error-message"]
    assert not set(served_after_kill()) & worker_pids, "served on the dead node"
    assert {r["error_type"] for r in lost} == {"Runtime.ExitError"}, lost
    # Events that were running on the node when it died ran again on the head node.
    retried = {key for key in caught if done[key] - worker_pids}
    assert retried, f"no event caught on the dead node was retried: {caught}"
    on_worker = {key for key, pids in done.items() if pids & worker_pids}
    assert not dead_letters, dead_letters
    print(
        f"\nsync calls: {len(replies)} ({sum(r.status_code == 502 for r in replies)} lost with "
        f"the node); events: {len(events)}, messages: {len(jobs)}, of which {len(on_worker)} "
        f"processed on the worker node; attempts lost with it: {len(lost)}; events running "
        f"there at the kill: {len(caught)}, retried on the head node: {len(retried)}"
    )
