"""`lamina up` as a process: drain on SIGTERM, no orphans after SIGKILL, and the CLI
commands a user runs against it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import typer
from handlers.ops import Gate
from harness import lamina_up, until, write_app
from typer.testing import CliRunner

from lamina.cli import app as cli_app
from lamina.store.sqlite import SqliteStore

LAMINA = [sys.executable, "-m", "lamina"]


def _cli(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LAMINA, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _survivors(procs: list[psutil.Process], timeout: float = 5.0) -> list[psutil.Process]:
    """Those of `procs` still running after `timeout`; a bounded poll, since they are not our
    children (an exited one may stay a zombie until its new parent reaps it)."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in procs if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def _refused(url: str, timeout: float = 5.0) -> bool:
    """Wait until new connections to `url` are refused (a bounded poll across processes)."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(address, timeout=1).close()
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            pass  # caught in the backlog of a listener being closed: poll until it is gone
        time.sleep(0.02)
    return False


def _app(tmp_path: Path) -> Path:
    return write_app(
        tmp_path / "app",
        {
            "gated": {"handler": "ops.gated", "events": [{"http": "POST /gated"}]},
            "echo": {"handler": "ops.echo", "events": [{"http": "GET /echo"}]},
            "fail": {"handler": "ops.fail"},
        },
    )


@pytest.mark.parametrize("http", ["uvicorn", "granian"])
async def test_sigterm_lets_the_in_flight_request_finish_then_exits_0_leaving_no_processes(
    tmp_path: Path, http: str
) -> None:
    with lamina_up(_app(tmp_path), "--http", http) as up:
        async with (
            Gate() as gate,
            httpx.AsyncClient(base_url=up.gateway_url, timeout=30) as client,
            asyncio.TaskGroup() as tasks,
        ):
            call = tasks.create_task(client.post("/gated", json={"gate": gate.port}))
            [pid] = await gate.arrivals(1)
            family = up.tree()
            up.process.send_signal(signal.SIGTERM)
            stopped_accepting = await asyncio.to_thread(_refused, up.gateway_url)
            gate.open()
            response = await call
        code = await asyncio.to_thread(up.process.wait, 10)
        left = await asyncio.to_thread(_survivors, family)
        output = up.output()
    assert pid in {p.pid for p in family}
    assert stopped_accepting, "after SIGTERM the gateway must stop accepting connections"
    assert response.status_code == 200 and response.json()["pid"] == pid
    assert code == 0, output
    assert left == [], f"still running after exit: {left}"


async def test_ctrl_c_drains_like_sigterm_though_every_process_of_the_group_gets_sigint(
    tmp_path: Path,
) -> None:
    """A terminal's Ctrl-C signals the whole foreground process group: zygotes, instances and
    the telemetry writer must leave it to the platform, which drains and records as usual."""
    app = _app(tmp_path)
    with lamina_up(app, session=True) as up:
        async with (
            Gate() as gate,
            httpx.AsyncClient(base_url=up.gateway_url, timeout=30) as client,
            asyncio.TaskGroup() as tasks,
        ):
            await client.get("/echo")  # its record's batch starts the telemetry writer
            await until(
                lambda: any("lamina.store._writer" in " ".join(p.cmdline()) for p in up.tree()),
                "the telemetry writer process",
            )
            call = tasks.create_task(client.post("/gated", json={"gate": gate.port}))
            [pid] = await gate.arrivals(1)
            os.killpg(up.process.pid, signal.SIGINT)
            await asyncio.to_thread(_refused, up.gateway_url)
            gate.open()
            response = await call
        code = await asyncio.to_thread(up.process.wait, 10)
        output = up.output()
    assert response.status_code == 200 and response.json()["pid"] == pid
    assert code == 0, output
    assert "KeyboardInterrupt" not in output, output
    async with SqliteStore(app / ".lamina" / "lamina.db") as store:
        recorded = {r.function_id: r.status for r in await store.invocations()}
    assert recorded == {"svc.echo": "ok", "svc.gated": "ok"}  # the last batch landed too


async def test_past_the_grace_period_a_request_still_running_is_cut_off_and_recorded_cancelled(
    tmp_path: Path,
) -> None:
    """SIGTERM while a function runs past `--grace`: the gateway gives up on its answer (the
    client's connection closes), the platform stops without waiting for it a second time,
    and the record says the caller left (cancelled), not that the instance crashed."""
    app = _app(tmp_path)
    with lamina_up(app, "--grace", "1") as up:
        async with (
            Gate() as warm,
            Gate() as gate,
            httpx.AsyncClient(base_url=up.gateway_url, timeout=30) as client,
        ):
            warm.open()  # a first call passes: the one cut off runs on a warm instance
            assert (await client.post("/gated", json={"gate": warm.port})).status_code == 200
            call = asyncio.ensure_future(client.post("/gated", json={"gate": gate.port}))
            await gate.arrivals(1)
            up.process.send_signal(signal.SIGTERM)
            with pytest.raises(httpx.RemoteProtocolError):  # closed without an answer
                await call
            code = await asyncio.to_thread(up.process.wait, 15)
            output = up.output()
    assert code == 0, output
    async with SqliteStore(app / ".lamina" / "lamina.db") as store:
        recorded = sorted(r.status for r in await store.invocations(function_id="svc.gated"))
    assert recorded == ["cancelled", "ok"], output


def test_after_sigkill_of_the_platform_its_zygotes_and_instances_exit_on_their_own(
    tmp_path: Path,
) -> None:
    with lamina_up(_app(tmp_path)) as up:
        served = httpx.get(f"{up.gateway_url}/echo", timeout=10)
        family = up.tree()
        up.process.kill()
        up.process.wait(10)
        left = _survivors(family)
    assert served.status_code == 200
    assert len(family) >= 4, "three zygotes and one instance were expected"
    assert left == [], f"orphans: {[(p.pid, p.cmdline()) for p in left]}"


def test_cli_status_and_invoke_talk_to_the_running_platform(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with lamina_up(app) as up, ThreadPoolExecutor(3) as pool:
        status = pool.submit(_cli, "status", "-C", str(app))
        # --payload, as `aws lambda invoke` names it (--data and -d are the same option)
        payload = ("--payload", '{"x": [1, 2]}')
        echoed = pool.submit(_cli, "invoke", "svc.echo", "-C", str(app), *payload)
        failed = pool.submit(_cli, "invoke", "svc.fail", "-C", str(app))
        status_run, echo_run, fail_run = status.result(), echoed.result(), failed.result()
        output = up.output()
    assert status_run.returncode == 0, status_run.stderr
    for fid in ("svc.gated", "svc.echo", "svc.fail"):
        assert fid in status_run.stdout
    assert echo_run.returncode == 0, echo_run.stderr
    assert json.loads(echo_run.stdout) == {"echo": {"x": [1, 2]}}
    assert fail_run.returncode == 1, output
    assert "ValueError" in fail_run.stderr
    assert "this function fails on purpose" in fail_run.stderr


def test_lamina_init_creates_an_app_that_lamina_up_serves(tmp_path: Path) -> None:
    target = tmp_path / "fresh"
    created = _cli("init", str(target))
    assert created.returncode == 0, created.stderr
    with lamina_up(target) as up:
        response = httpx.get(f"{up.gateway_url}/hello", timeout=10)
        up.process.send_signal(signal.SIGTERM)
        code = up.process.wait(10)
    assert response.status_code == 200
    assert response.json()["message"] == "Hello, world!"
    assert code == 0


def test_lamina_up_on_an_invalid_manifest_exits_2_naming_file_line_and_key(
    tmp_path: Path,
) -> None:
    app = write_app(tmp_path / "bad", {"fn": {"handler": "ops.pid", "memory": 64, "events": []}})
    manifest = app / "lamina.yaml"
    line = next(
        n for n, text in enumerate(manifest.read_text().splitlines(), 1) if "memory:" in text
    )
    run = _cli("up", str(app), "--port", "0")
    assert run.returncode == 2
    assert f"{manifest}:{line}: services.svc.functions.fn.memory: expected" in run.stderr
    assert "got 64" in run.stderr
    assert not (app / ".lamina" / "platform.json").exists()


def test_every_command_help_shows_an_example() -> None:
    runner = CliRunner()
    commands = sorted(typer.main.get_command(cli_app).commands)  # type: ignore[attr-defined]
    assert {"up", "invoke", "status", "init"} <= set(commands)
    for args in ([], *([name] for name in commands)):
        result = runner.invoke(cli_app, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example:" in result.output, f"lamina {' '.join(args)} --help has no example"
