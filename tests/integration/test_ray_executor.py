"""The Ray executor as an operator meets it: `lamina up --executor ray` joins a running cluster
and `/status` says on which Ray node each instance runs; without Ray installed, a clear error.

Behaviour shared with the local backend (timeouts, crashes, memory, scale-to-zero, logs) is
tested by the tests that take the `executor` fixture, on both backends."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from harness import LAMINA, client_for, lamina_up, run_platform, until


def test_lamina_up_on_a_ray_cluster_serves_and_status_names_each_instances_node(
    app_dir: Callable[..., Path], ray_cluster: str
) -> None:
    import ray

    app = app_dir({"hello": {"handler": "basic.hello", "events": [{"http": "GET /hello"}]}})
    with lamina_up(app, "--executor", "ray", "--ray-address", ray_cluster) as up:
        response = httpx.get(f"{up.gateway_url}/hello", timeout=30)
        info = httpx.get(f"{up.gateway_url}/hello", timeout=30).json()
        token = (app / ".lamina" / "admin-token").read_text().strip()
        admin = json.loads((app / ".lamina" / "platform.json").read_bytes())["admin_url"]
        status = httpx.get(
            f"{admin}/status", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        shown = subprocess.run(
            [*LAMINA, "status", "-C", str(app)], capture_output=True, text=True, timeout=30
        )
    assert response.status_code == 200, up.output()
    [function] = status["functions"]
    [placed] = function["placement"]
    assert function["instances"] == 1
    assert placed["pid"] == info["pid"] == response.json()["pid"]
    nodes = {node["NodeID"]: node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]}
    assert nodes[placed["node_id"]] == placed["node_ip"]
    assert (
        f"svc.hello instance {placed['instance']} (pid {info['pid']}) on Ray node "
        f"{placed['node_id'][:12]} {placed['node_ip']}"
    ) in shown.stdout.splitlines(), shown.stdout + shown.stderr


def _backend_folder(instance_pid: int) -> Path:
    """The folder of the executor inside an instance's actor: where its socket listens."""
    for process in psutil.Process(instance_pid).parents():
        for connection in process.net_connections(kind="unix"):
            if str(connection.laddr).endswith("instances.sock"):
                return Path(connection.laddr).parent
    raise AssertionError(f"no executor socket among the parents of instance {instance_pid}")


async def test_an_actor_killed_at_its_timeout_leaves_no_folder_behind(
    app_dir: Callable[..., Path], ray_cluster: str
) -> None:
    app = app_dir(
        {
            "hang": {"handler": "ops.hang", "timeout": 3, "events": [{"http": "GET /hang"}]},
            "pid": {"handler": "ops.pid", "events": [{"http": "GET /pid"}]},
        }
    )
    async with (
        run_platform(app, executor="ray", ray_address=ray_cluster) as platform,
        client_for(platform) as client,
    ):
        hung = asyncio.create_task(client.get("/hang"))

        def placed() -> list[int]:
            [hang] = [f for f in platform.status()["functions"] if f["id"] == "svc.hang"]
            return [where["pid"] for where in hang.get("placement", [])]

        [pid] = await until(placed, "the hanging instance to start", 30)
        folder = _backend_folder(pid)
        actor = psutil.Process(pid).parent().parent()  # instance <- zygote <- actor
        timed_out = await hung
        await asyncio.to_thread(actor.wait, 10)  # killed from outside: no cleanup ran in it
        served = await client.get("/pid")  # the node's next instance
    assert timed_out.status_code == 504, timed_out.text
    assert served.status_code == 200, served.text
    assert not folder.exists(), f"the killed actor left {sorted(folder.iterdir())}"


def test_the_ray_executor_without_ray_installed_says_which_extra_to_install(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir({"hello": {"handler": "basic.hello"}})
    no_ray = (
        "import sys; sys.modules['ray'] = None; from lamina.cli import main; "
        f"sys.argv = ['lamina', 'up', {str(app)!r}, '--port', '0', '--executor', 'ray']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", no_ray], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1, done.stderr
    assert 'pip install "lamina[ray]"' in done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--executor", "kubernetes"], "--executor: expected 'local' or 'ray', got 'kubernetes'"),
        (["--ray-address", "auto"], "--ray-address needs --executor ray"),
    ],
)
def test_bad_executor_flags_exit_2_saying_what_is_wrong(
    app_dir: Callable[..., Path], flags: list[str], message: str
) -> None:
    app = app_dir({"hello": {"handler": "basic.hello"}})
    done = subprocess.run(
        [sys.executable, "-m", "lamina", "up", str(app), "--port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
