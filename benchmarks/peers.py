"""The servers compared, how the suite installs them and how it starts each one.

Every peer runs from `benchmarks/.peers/` (git-ignored), never from Lamina's own environment:
the Python peers from one virtual environment (`.peers/venv`), serverless-offline from
`.peers/node_modules` (serverless v3: v4 needs a login and a licence). `install` does it once
and skips it when the pinned requirements have not changed. `start(peer, port)` runs a peer on
127.0.0.1:port in its own process group with its output in `.peers/logs/<peer>.log`, and yields
its base URL once it answers.
"""

from __future__ import annotations

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
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from run import free_port, lamina_platform, process

HERE = Path(__file__).parent
PEERS = HERE / ".peers"
VENV = PEERS / "venv"
HANDLERS = HERE / "app" / "services" / "bench"
APPS = HERE / "peer_apps"
LOGS = PEERS / "logs"

PYTHON_PEERS = {
    "chalice": "chalice>=1.31,<2",
    "functions-framework": "functions-framework>=3.8,<4",
    "ray": "ray[serve]>=2.40,<3",
}
NODE_PEERS = {"serverless-offline": ["serverless@3", "serverless-offline@13"]}


class PeerError(RuntimeError):
    """A peer could not be installed or started; the message says why (and where its log is)."""


@dataclass(frozen=True, slots=True)
class Peer:
    key: str  # the name --only takes
    label: str  # the table's "server" column
    start: Callable[[int], AbstractContextManager[str]]  # port -> base URL while running


def _install_marker(where: Path, wanted: str) -> bool:
    marker = where / ".installed"
    return marker.exists() and marker.read_text() == wanted


def _run_logged(cmd: list[str], log: Path, what: str, **kwargs: object) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise PeerError(f"{what} failed (exit {done.returncode}); see {log}:\n{tail}")


def install_python(keys: list[str]) -> None:
    """pip-install the Python peers named in `keys` into .peers/venv."""
    reqs = sorted(PYTHON_PEERS[k] for k in keys)
    wanted = "\n".join(reqs)
    if not reqs or _install_marker(VENV, wanted):
        return
    log = LOGS / "install-python.log"
    if not (VENV / "bin" / "python").exists():
        _run_logged([sys.executable, "-m", "venv", str(VENV)], log, "creating .peers/venv")
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run_logged([*pip, *reqs], log, f"pip install {' '.join(reqs)}")
    (VENV / ".installed").write_text(wanted)


def install_node() -> None:
    """npm-install serverless v3 and serverless-offline into .peers/node_modules."""
    packages = NODE_PEERS["serverless-offline"]
    wanted = "\n".join(packages)
    if _install_marker(PEERS, wanted):
        return
    if shutil.which("npm") is None:
        raise PeerError("npm is not installed (Debian: apt-get install npm)")
    package_json = PEERS / "package.json"
    if not package_json.exists():
        package_json.write_text('{"private": true, "description": "benchmark peers"}\n')
    cmd = ["npm", "install", "--no-audit", "--no-fund", "--save-exact", *packages]
    _run_logged(cmd, LOGS / "install-node.log", f"npm install {' '.join(packages)}", cwd=PEERS)
    (PEERS / ".installed").write_text(wanted)


def versions(keys: list[str]) -> dict[str, str]:
    """The installed version of each peer package among `keys` that could be read."""
    found: dict[str, str] = {}
    dists = [PYTHON_PEERS[k].split(">")[0].split("[")[0] for k in keys if k in PYTHON_PEERS]
    if dists and (VENV / "bin" / "python").exists():
        code = "import importlib.metadata as m, sys; [print(d, m.version(d)) for d in sys.argv[1:]]"
        done = subprocess.run(
            [str(VENV / "bin" / "python"), "-c", code, *dists], capture_output=True, text=True
        )
        for line in done.stdout.splitlines():
            name, _, version = line.partition(" ")
            found[name] = version
    if "serverless-offline" in keys:
        for package in ("serverless", "serverless-offline"):
            manifest = PEERS / "node_modules" / package / "package.json"
            if manifest.exists():
                found[package] = json.loads(manifest.read_text())["version"]
    return found


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "BENCH_HANDLERS": str(HANDLERS), **extra}


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, deadline_s: float) -> None:
    """Until `url` answers 200: a proxy may answer 404 or 503 before its app is deployed."""
    end = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text().splitlines()[-15:])
            raise PeerError(f"exited with {proc.returncode} before answering; see {log}:\n{tail}")
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]!r}"
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(0.2)
    raise PeerError(f"{url} did not answer 200 within {deadline_s:.0f} s (last: {last}); see {log}")


@contextmanager
def _serve(
    name: str, cmd: list[str], url: str, deadline_s: float = 60, **kwargs: object
) -> Iterator[str]:
    """Run `cmd` in its own process group until the block ends; yield `url` once it answers."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    group = None
    try:
        with (
            log.open("w") as out,
            process(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            ) as proc,
        ):
            group = proc.pid
            _wait_ready(proc, f"{url}/hello", log, deadline_s)
            yield url
    finally:
        # Whatever it started and left behind (Ray's raylet, serverless' python children).
        if group is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


@contextmanager
def _copy(folder: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / folder
        shutil.copytree(APPS / folder, dest)
        yield dest


@contextmanager
def lamina(port: int) -> Iterator[str]:
    del port  # lamina_platform picks its own ports
    with lamina_platform() as (url, _admin, _token, _pid):
        yield url


@contextmanager
def lamina_granian(port: int) -> Iterator[str]:
    del port
    with lamina_platform("--http", "granian") as (url, _admin, _token, _pid):
        yield url


@contextmanager
def uvicorn(port: int) -> Iterator[str]:
    cmd = [sys.executable, str(HERE / "bare_uvicorn.py"), str(port)]
    with _serve("uvicorn", cmd, f"http://127.0.0.1:{port}", env=_env()) as url:
        yield url


@contextmanager
def uvicorn_logged(port: int) -> Iterator[str]:
    cmd = [sys.executable, str(HERE / "bare_uvicorn.py"), str(port), "--access-log"]
    with _serve("uvicorn-logged", cmd, f"http://127.0.0.1:{port}", env=_env()) as url:
        yield url


@contextmanager
def chalice(port: int) -> Iterator[str]:
    cmd = [str(VENV / "bin" / "chalice"), "local", "--host", "127.0.0.1", "--port", str(port)]
    cmd.append("--no-autoreload")
    with (
        _copy("chalice") as app,
        _serve("chalice", cmd, f"http://127.0.0.1:{port}", cwd=app, env=_env()) as url,
    ):
        yield url


@contextmanager
def functions_framework(port: int) -> Iterator[str]:
    cmd = [str(VENV / "bin" / "functions-framework"), "--target", "dispatch"]
    cmd += ["--source", "main.py", "--host", "127.0.0.1", "--port", str(port)]
    with _copy("functions_framework") as app:
        url = f"http://127.0.0.1:{port}"
        with _serve("functions-framework", cmd, url, cwd=app, env=_env()) as url:
            yield url


@contextmanager
def ray_serve(port: int) -> Iterator[str]:
    cmd = [str(VENV / "bin" / "python"), "serve_app.py", str(port)]
    env = _env(RAY_USAGE_STATS_ENABLED="0")
    with _copy("ray_serve") as app:
        url = f"http://127.0.0.1:{port}"
        with _serve("ray", cmd, url, deadline_s=240, cwd=app, env=env) as url:
            yield url


@contextmanager
def serverless_offline(port: int) -> Iterator[str]:
    with _copy("serverless") as app:
        (app / "node_modules").symlink_to(PEERS / "node_modules")
        cmd = [str(PEERS / "node_modules" / ".bin" / "serverless"), "offline", "start"]
        cmd += ["--host", "127.0.0.1", "--httpPort", str(port), "--noPrependStageInUrl"]
        for flag in ("--lambdaPort", "--websocketPort", "--albPort"):
            cmd += [flag, str(free_port())]
        env = _env(
            VIRTUAL_ENV=str(VENV),  # serverless-offline runs handlers with this venv's python3
            SLS_TELEMETRY_DISABLED="1",
            SLS_NOTIFICATIONS_MODE="off",
            SLS_DEPRECATION_DISABLE="*",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
        )
        url = f"http://127.0.0.1:{port}"
        with _serve("serverless-offline", cmd, url, deadline_s=120, cwd=app, env=env) as url:
            yield url


ALL = [
    Peer("uvicorn", "bare uvicorn (floor)", uvicorn),
    Peer("uvicorn-logged", "bare uvicorn, access log on (its default)", uvicorn_logged),
    Peer("lamina", "Lamina", lamina),
    Peer("lamina-granian", "Lamina (--http granian)", lamina_granian),
    Peer("serverless-offline", "serverless-offline", serverless_offline),
    Peer("functions-framework", "functions-framework", functions_framework),
    Peer("chalice", "chalice local", chalice),
    Peer("ray", "Ray Serve (1 replica)", ray_serve),
]
