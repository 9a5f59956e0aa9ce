"""Per-service virtual environments: a service that declares `requirements:` runs its
functions from a virtual environment of its own, so two services can pin different versions of
the same library.

An environment is cached by a key (`venv_key`) that hashes the requirements file's content
(and that of the files it includes with `-r`/`-c`), the Python implementation and version, the
platform and the base interpreter: the same inputs reuse the same environment, any change builds
a new one. Environments live in the user's cache, `default_venv_dir()`/<key>, outside the app
(whose folder `lamina dev` watches), shared by every app and service with the same
requirements. They are built with `uv` when it is installed
(Lamina depends on the `uv` package) and else with `python -m venv` plus pip, one build per key
at a time (a file lock, so platforms sharing a cache wait for each other). A finished build
writes `lamina-venv.json`; a folder without it is a failed or interrupted build, built again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib
import logging
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

from lamina.errors import RequirementsError
from lamina.manifest import AppSpec

__all__ = [
    "BUILD_TIMEOUT_S",
    "MARKER",
    "ServiceVenvs",
    "VenvEvent",
    "default_venv_dir",
    "ensure_venv",
    "find_uv",
    "python_tag",
    "requirement_files",
    "services_using",
    "venv_key",
]

log = logging.getLogger(__name__)

BUILD_TIMEOUT_S = 900.0  # s one environment's build may take before it is abandoned
MARKER = "lamina-venv.json"  # written last: the environment is complete
_LOCK_POLL_S = 0.2  # s between attempts to take a build lock another build holds
_OUTPUT_LINES = 40  # lines of the installer's output an error shows
# A line of a requirements file that includes another one: `-r base.txt`, `--constraint=c.txt`.
_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+)(\S+)")


State = Literal["building", "built", "reused", "failed"]


@dataclass(frozen=True, slots=True)
class VenvEvent:
    """One step of preparing a service's environment, for a status line."""

    service: str
    requirements: str  # the file as shown to people (relative to the app when inside it)
    state: State
    installer: str  # "uv" or "pip"
    path: Path  # the environment's folder
    elapsed_s: float = 0.0  # with "built": how long the build took


Progress = Callable[[VenvEvent], None]

_LOG_MESSAGES: dict[State, str] = {
    "building": "service environment building",
    "built": "service environment built",
    "reused": "service environment reused",
    "failed": "service environment failed to build",
}


def default_venv_dir(environ: Mapping[str, str]) -> Path:
    """Where environments are cached: $LAMINA_VENV_DIR, else $XDG_CACHE_HOME/lamina/venvs,
    else ~/.cache/lamina/venvs."""
    if environ.get("LAMINA_VENV_DIR"):
        return Path(environ["LAMINA_VENV_DIR"]).expanduser()
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "lamina" / "venvs"


# -- the key ------------------------------------------------------------------------------------
def python_tag() -> str:
    """What an environment depends on besides its requirements: the interpreter it is made
    from, e.g. `cpython-3.11.7-linux-x86_64:/usr/bin/python3.11`."""
    version = ".".join(str(n) for n in sys.version_info[:3])
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return f"{sys.implementation.name}-{version}-{sys.platform}-{platform.machine()}:{base}"


def requirement_files(requirements: Path) -> list[Path]:
    """`requirements` and the files it includes (`-r`, `-c`, recursively), relative paths
    taken from the including file's folder; files that cannot be read are left to the
    installer to report."""
    found: list[Path] = []
    pending = [requirements]
    while pending:
        path = pending.pop(0)
        if path in found:
            continue
        found.append(path)
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in path.read_text().splitlines():
                match = _INCLUDE.match(line)
                if match:
                    pending.append(Path(os.path.normpath(path.parent / match.group(1))))
    return found


def venv_key(requirements: Path, python: str) -> str:
    """The cache key of the environment for `requirements` made with interpreter `python`:
    24 hex digits of a SHA-256 over the tag and every included file's name and content."""
    digest = hashlib.sha256(f"lamina-venv-1\n{python}\n".encode())
    for path in requirement_files(requirements):
        try:
            content = path.read_bytes()
        except OSError:
            content = b"<missing>"
        digest.update(f"{path.name}\n{len(content)}\n".encode())
        digest.update(content)
    return digest.hexdigest()[:24]


# -- building -------------------------------------------------------------------------------------
def find_uv() -> str | None:
    """The `uv` executable: the one the `uv` package ships, else one on PATH, else None."""
    with contextlib.suppress(ImportError, FileNotFoundError, AttributeError):
        return str(importlib.import_module("uv").find_uv_bin())
    return shutil.which("uv")


def _commands(uv: str | None, dest: Path, requirements: Path) -> list[list[str]]:
    python = str(dest / "bin" / "python")
    if uv is not None:
        return [
            [uv, "venv", "--quiet", "--python", sys.executable, str(dest)],
            [uv, "pip", "install", "--python", python, "-r", str(requirements)],
        ]
    return [
        [sys.executable, "-m", "venv", str(dest)],
        [python, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)],
    ]


async def _run(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run one build step; its exit status and its output (stdout and stderr together)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), BUILD_TIMEOUT_S)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, output.decode(errors="replace")


def _tail(output: str) -> str:
    lines = [line for line in output.rstrip().splitlines() if line.strip()]
    shown = lines[-_OUTPUT_LINES:]
    if len(lines) > len(shown):
        shown.insert(0, f"... ({len(lines) - len(shown)} earlier lines)")
    return "\n".join(f"  {line}" for line in shown)


@contextlib.asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock on file `path`: other builds of the same key, in this process or
    another, wait for it (polling every `_LOCK_POLL_S`, so a cancelled wait leaves nothing)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock


def _complete(dest: Path) -> bool:
    return (dest / MARKER).is_file() and (dest / "bin" / "python").exists()


async def ensure_venv(
    service: str,
    requirements: Path,
    cache_dir: Path,
    *,
    shown: str,
    uv: str | None,
    progress: Progress | None = None,
) -> Path:
    """The folder of the environment for `requirements`, built now unless the cache holds it.
    Raises RequirementsError (naming `service`, the file as `shown` and the installer's
    output) when it cannot be built; no partial environment is kept. `uv` is the uv
    executable to build with; None builds with `python -m venv` and pip."""
    installer = "uv" if uv is not None else "pip"
    key = venv_key(requirements, python_tag())
    dest = cache_dir / key

    def report(state: State, elapsed_s: float = 0.0) -> None:
        event = VenvEvent(service, shown, state, installer, dest, elapsed_s)
        log.log(
            logging.WARNING if state == "failed" else logging.INFO,
            _LOG_MESSAGES[state],
            extra={"service": service, "requirements": shown, "venv": str(dest)},
        )
        if progress is not None:
            progress(event)

    if _complete(dest):
        report("reused")
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    async with _locked(cache_dir / f"{key}.lock"):
        if _complete(dest):  # built by another platform while this one waited
            report("reused")
            return dest
        report("building")
        started = time.perf_counter()
        shutil.rmtree(dest, ignore_errors=True)  # what a failed or interrupted build left
        try:
            for argv in _commands(uv, dest, requirements):
                try:
                    status, output = await _run(argv, requirements.parent)
                except OSError as exc:
                    raise RequirementsError(
                        service, shown, f"cannot run {argv[0]}: {exc.strerror}"
                    ) from exc
                except TimeoutError as exc:
                    raise RequirementsError(
                        service, shown, f"the build took over {BUILD_TIMEOUT_S:.0f} seconds"
                    ) from exc
                if status != 0:
                    step = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
                    raise RequirementsError(
                        service, shown, f"`{step}` exited with status {status}", _tail(output)
                    )
        except BaseException as exc:
            shutil.rmtree(dest, ignore_errors=True)
            if isinstance(exc, RequirementsError):
                report("failed")
            raise
        marker = {"requirements": str(requirements), "python": python_tag(), "installer": installer}
        (dest / MARKER).write_bytes(orjson.dumps(marker))
        report("built", time.perf_counter() - started)
    return dest


class ServiceVenvs:
    """The environments of an app's services: built at start, rebuilt by `lamina dev`."""

    def __init__(
        self, cache_dir: Path, progress: Progress | None = None, *, use_uv: bool = True
    ) -> None:
        self.cache_dir = cache_dir
        self.progress = progress
        self.use_uv = use_uv  # False: always `python -m venv` and pip
        self._paths: dict[str, Path] = {}  # service -> its environment's folder

    def path(self, service: str) -> Path | None:
        """The environment `service`'s functions run in; None: the platform's own."""
        return self._paths.get(service)

    async def build(self, app: AppSpec) -> list[str]:
        """Make sure every service of `app` that declares requirements has its environment,
        one service after the other; returns the services whose environment changed. Raises
        RequirementsError for the first that fails, and then changes nothing."""
        paths: dict[str, Path] = {}
        wanted = {n: s for n, s in app.services.items() if s.requirements is not None}
        uv = find_uv() if self.use_uv and wanted else None
        for name, service in wanted.items():
            assert service.requirements is not None
            paths[name] = await ensure_venv(
                name,
                service.requirements,
                self.cache_dir,
                shown=_shown(service.requirements, app.root),
                uv=uv,
                progress=self.progress,
            )
        changed = [s for s in {*paths, *self._paths} if paths.get(s) != self._paths.get(s)]
        self._paths = paths
        return sorted(changed)

    @staticmethod
    def files(app: AppSpec) -> dict[Path, list[str]]:
        """Every requirements file of `app` (and the files they include), with the services
        that use it: a change to one of them is a change to those services' environments."""
        users: dict[Path, list[str]] = {}
        for name, service in app.services.items():
            if service.requirements is not None:
                for path in requirement_files(service.requirements):
                    users.setdefault(path, []).append(name)
        return users


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def services_using(app: AppSpec, files: Iterable[Path]) -> list[str]:
    """The services whose requirements (or an included file) are among `files`."""
    users = ServiceVenvs.files(app)
    return sorted({s for f in files for s in users.get(f, ())})
