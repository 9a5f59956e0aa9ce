"""Limits enforced from outside the instance, as an HTTP caller sees them: timeouts, memory,
crashes, and where function output goes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from handlers.ops import Gate
from harness import client_for, run_platform


def _cgroup_memory_writable() -> bool:
    """Whether this process may create memory cgroups (v1 controller or v2 unified tree)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        hid, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return os.access(f"/sys/fs/cgroup/memory{path}", os.W_OK)
        if hid == "0" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            return os.access(f"/sys/fs/cgroup{path}", os.W_OK)
    return False


async def _gone(pid: int, timeout: float = 5.0) -> bool:
    """Wait (in a thread, so the platform keeps running) until process `pid` has exited."""

    def wait() -> bool:
        try:
            proc = psutil.Process(pid)
            proc.wait(timeout)
        except psutil.NoSuchProcess:
            return True
        except psutil.TimeoutExpired:
            return proc.status() == psutil.STATUS_ZOMBIE
        return True

    return await asyncio.to_thread(wait)


async def test_a_handler_past_its_timeout_is_killed_and_the_caller_gets_504(
    app_dir: Callable[..., Path], executor: dict[str, Any]
) -> None:
    app = app_dir(
        {"stuck": {"handler": "ops.gated", "timeout": 0.5, "events": [{"http": "POST /stuck"}]}}
    )
    async with (
        run_platform(app, **executor) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        call = tasks.create_task(client.post("/stuck", json={"gate": gate.port}))
        [pid] = await gate.arrivals(1)  # running, and never released
        response = await call
        assert await _gone(pid), "the timed-out instance is still running"
    assert response.status_code == 504
    assert response.json() == {"message": "Endpoint request timed out"}
    assert response.headers["x-lamina-error"] == "Sandbox.Timedout"
    assert response.headers["x-lamina-error-message"] == "Task timed out after 0.50 seconds"


async def test_each_invocation_gets_its_whole_timeout_on_an_instance_that_served_others(
    app_dir: Callable[..., Path],
) -> None:
    """One instance, timeout 1 s: the first invocation returns at once, the second starts
    0.5 s later and hangs. It is killed 1 s after it started, not at the first one's deadline."""
    app = app_dir(
        {
            "stuck": {
                "handler": "ops.gated",
                "timeout": 1,
                "max_instances": 1,
                "events": [{"http": "POST /stuck"}],
            }
        }
    )
    loop = asyncio.get_running_loop()
    async with (
        run_platform(app) as platform,
        client_for(platform) as client,
        Gate() as quick,
        Gate() as never,
        asyncio.TaskGroup() as tasks,
    ):
        first = tasks.create_task(client.post("/stuck", json={"gate": quick.port}))
        [pid] = await quick.arrivals(1)
        quick.open()
        assert (await first).status_code == 200
        await asyncio.sleep(0.5)  # the gap under test: the first deadline passes meanwhile
        started = loop.time()
        second = tasks.create_task(client.post("/stuck", json={"gate": never.port}))
        assert await never.arrivals(1) == [pid], "both invocations ran on one instance"
        response = await second
        elapsed = loop.time() - started
    assert response.status_code == 504
    assert response.headers["x-lamina-error-message"] == "Task timed out after 1.00 seconds"
    assert elapsed >= 1.0, f"killed {elapsed:.3f} s after it started, before its timeout"


@pytest.mark.parametrize(
    "cgroups",
    [
        pytest.param(
            True,
            id="kernel cgroup limit",
            marks=pytest.mark.skipif(
                not _cgroup_memory_writable(), reason="no writable memory cgroup here"
            ),
        ),
        pytest.param(False, id="RLIMIT_AS fallback"),
    ],
)
async def test_a_handler_past_its_memory_is_killed_and_the_caller_gets_502_out_of_memory(
    app_dir: Callable[..., Path], cgroups: bool, executor: dict[str, Any]
) -> None:
    app = app_dir(
        {"hog": {"handler": "basic.chaos", "memory": 128, "events": [{"http": "POST /hog"}]}}
    )
    async with (
        run_platform(app, cgroups=cgroups, **executor) as platform,
        client_for(platform) as client,
    ):
        local = executor["executor"] == "local"  # on Ray, each instance's actor has a limiter
        kind = platform._backend.limiter.kind if local else ""  # type: ignore[union-attr]
        warm = await client.post("/hog", json={"allocate_mb": 16})
        response = await client.post("/hog", json={"allocate_mb": 512})
        pid = warm.json()["pid"]
        assert await _gone(pid), "the instance past its memory limit is still running"
        after = await client.post("/hog", json={})
    if local:
        assert kind.startswith("cgroup-") if cgroups else kind == "rlimit"
    assert warm.status_code == 200, "a handler within its memory limit must succeed"
    assert response.status_code == 502
    assert response.json() == {"message": "Internal Server Error"}
    assert response.headers["x-lamina-error"] == "Runtime.OutOfMemory"
    assert after.status_code == 200
    assert after.json()["pid"] != pid


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param({"exit": 3}, "exit status 3", id="os._exit(3)"),
        pytest.param({"segfault": True}, "signal: segmentation fault", id="segfault"),
    ],
)
async def test_a_crashing_instance_fails_only_its_own_request_and_is_replaced(
    app_dir: Callable[..., Path], payload: dict[str, Any], reason: str, executor: dict[str, Any]
) -> None:
    app = app_dir(
        {
            "chaos": {"handler": "basic.chaos", "events": [{"http": "POST /chaos"}]},
            "other": {"handler": "ops.gated", "events": [{"http": "POST /other"}]},
        }
    )
    async with (
        run_platform(app, **executor) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        before = await client.post("/chaos", json={})
        other = tasks.create_task(client.post("/other", json={"gate": gate.port}))
        await gate.arrivals(1)  # the other function is mid-invocation during the crash
        crashed = await client.post("/chaos", json=payload)
        gate.open()
        other_response = await other
        after = await client.post("/chaos", json={})
        assert await _gone(before.json()["pid"]), "the crashed instance is still running"
    assert before.status_code == 200
    assert crashed.status_code == 502
    assert crashed.json() == {"message": "Internal Server Error"}
    assert crashed.headers["x-lamina-error"] == "Runtime.ExitError"
    assert reason in crashed.headers["x-lamina-error-message"]
    assert other_response.status_code == 200
    assert after.status_code == 200
    assert after.json()["pid"] != before.json()["pid"]


async def test_function_output_is_printed_on_the_console_with_function_and_request_id(
    app_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str], executor: dict[str, Any]
) -> None:
    app = app_dir({"talk": {"handler": "ops.talk", "events": [{"http": "POST /talk"}]}})
    async with run_platform(app, **executor) as platform, client_for(platform) as client:
        first = await client.post("/talk", json={"word": "alpha"})
        second = await client.post("/talk", json={"word": "beta"})
    out = capsys.readouterr().out.splitlines()
    prefixes = []
    for response, word in ((first, "alpha"), (second, "beta")):
        assert response.status_code == 200
        prefix = f"[svc.talk {response.headers['x-amzn-requestid'][-8:]}]"
        prefixes.append(prefix)
        assert f"{prefix} out {word}" in out
        assert f"{prefix} err {word}" in out
    assert prefixes[0] != prefixes[1]  # each request told apart
