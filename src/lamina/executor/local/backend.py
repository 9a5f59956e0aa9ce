"""The local backend: one zygote per function, instances forked from it as OS processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from lamina.errors import InitError
from lamina.executor.local.instance import LocalInstance
from lamina.executor.local.memory import MemoryLimiter, detect_limiter
from lamina.executor.local.runtime_path import RuntimePath, build_runtime_path
from lamina.executor.local.zygote import ZygoteProcess
from lamina.executor.types import INIT_TIMEOUT_S, FunctionConfig, Instance
from lamina.runtime.protocol import FrameReader

__all__ = ["LocalBackend", "remove_stale_folders"]

log = logging.getLogger(__name__)

_FOLDER_PREFIX = "lamina-"  # each backend's folder: lamina-<pid>-<random>, in the temp dir


def remove_stale_folders(parent: Path) -> list[Path]:
    """Remove the folders (socket, runtime copies) of backends whose process was killed before
    it could close them: an instance's Ray actor killed at its timeout, a platform killed with
    SIGKILL. Only this user's folders named `lamina-<pid>-*` whose pid no longer runs go."""
    removed = []
    with contextlib.suppress(OSError):
        for old in parent.glob(f"{_FOLDER_PREFIX}*-*"):
            pid = old.name.split("-")[1]
            with contextlib.suppress(OSError):
                stale = pid.isdigit() and not Path(f"/proc/{pid}").exists()
                if stale and old.is_dir() and old.stat().st_uid == os.getuid():
                    shutil.rmtree(old)
                    removed.append(old)
    return removed


class _Connection(asyncio.Protocol):
    """An instance's connection: the first frame says which instance it is."""

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self._frames = FrameReader()
        self._transport: asyncio.Transport | None = None
        self.instance: LocalInstance | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        for message in self._frames.feed(data):
            if self.instance is not None:
                self.instance.on_message(message)
                continue
            instance = self._backend._starting.get(str(message.get("iid")))
            if message.get("op") != "hello" or instance is None or self._transport is None:
                if self._transport is not None:
                    self._transport.close()
                return
            instance.attach(self._transport, int(message["pid"]))
            self.instance = instance

    def connection_lost(self, exc: Exception | None) -> None:
        if self.instance is not None:
            self.instance.connection_lost()


class LocalBackend:
    """Instances as local processes forked from per-function zygotes."""

    def __init__(
        self, state_dir: Path | None = None, cgroups: bool = True, spare: bool = True
    ) -> None:
        self._state_dir = state_dir
        self._use_cgroups = cgroups
        self._spare = spare  # zygotes keep a forked spare for the next cold start
        self._zygotes: dict[tuple[str, int], ZygoteProcess] = {}  # by (function id, revision)
        self._released: set[tuple[str, int]] = set()  # zygotes to stop once their instances exit
        self._instance_key: dict[str, tuple[str, int]] = {}  # live instance id -> its zygote
        self._closing: set[asyncio.Task[None]] = set()
        self._starting: dict[str, LocalInstance] = {}
        self._by_pid: dict[int, LocalInstance] = {}
        self._all: dict[str, LocalInstance] = {}
        self._server: asyncio.AbstractServer | None = None
        self._socket_path = ""
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.limiter: MemoryLimiter = MemoryLimiter()
        self._runtime: RuntimePath | None = None  # made when a first zygote runs in a venv
        self._runtime_lock = asyncio.Lock()

    async def start(self) -> None:
        removed = await asyncio.to_thread(remove_stale_folders, Path(tempfile.gettempdir()))
        if removed:
            log.info("removed folders of killed executors", extra={"folders": len(removed)})
        self._tmpdir = tempfile.TemporaryDirectory(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-")
        self._socket_path = os.path.join(self._tmpdir.name, "instances.sock")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _Connection(self), self._socket_path)
        if self._use_cgroups:
            self.limiter = detect_limiter(f"lamina-{os.getpid()}-{secrets.token_hex(3)}")
        log.info("local executor started", extra={"memory_limits": self.limiter.kind})

    async def close(self) -> None:
        for instance in list(self._all.values()):
            instance.kill()
        for zygote in self._zygotes.values():
            await zygote.close()
        self._zygotes.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self.limiter.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    # -- preloads learned from earlier instances --------------------------------------------------
    def _preload_file(self, fn: FunctionConfig) -> Path | None:
        return None if self._state_dir is None else self._state_dir / "preload" / f"{fn.id}.json"

    def _learned(self, fn: FunctionConfig) -> list[str]:
        path = self._preload_file(fn)
        if path is None or not path.exists():
            return []
        with contextlib.suppress(OSError, ValueError):
            data = orjson.loads(path.read_bytes())
            if isinstance(data, list):
                return [str(m) for m in data]
        return []

    def _remember(self, fn: FunctionConfig, modules: list[str]) -> None:
        path = self._preload_file(fn)
        if path is None:
            return
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(orjson.dumps(list(dict.fromkeys(modules))))

    def _forget(self, fn: FunctionConfig, module: str) -> None:
        self._remember(
            fn, [m for m in self._learned(fn) if m != module and not m.startswith(f"{module}.")]
        )

    async def _runtime_path(self) -> RuntimePath:
        """Lamina's runtime for zygotes in service environments, linked once per backend."""
        async with self._runtime_lock:
            if self._runtime is None:
                assert self._tmpdir is not None
                self._runtime = await build_runtime_path(Path(self._tmpdir.name) / "runtime")
            return self._runtime

    # -- instances --------------------------------------------------------------------------------
    def _zygote(self, fn: FunctionConfig) -> ZygoteProcess:
        key = (fn.id, fn.revision)
        zygote = self._zygotes.get(key)
        if zygote is None:
            preload = tuple(dict.fromkeys([*fn.preload, *self._learned(fn)]))
            zygote = ZygoteProcess(
                FunctionConfig(**{**_fields(fn), "preload": preload}),
                fn.preload,
                self._socket_path,
                self._instance_exited,
                lambda module: self._forget(fn, module),
                self._runtime_path,
                spare=self._spare,
                spare_cgroup=lambda: self.limiter.prepare(f"s{secrets.token_hex(6)}", fn.memory_mb),
                release_cgroup=lambda path: self.limiter.release(os.path.basename(path)),
            )
            self._zygotes[key] = zygote
        return zygote

    async def prepare(self, fn: FunctionConfig) -> None:
        await self._zygote(fn).ensure_started()

    def release(self, fn: FunctionConfig) -> None:
        """Stop `fn`'s zygote (this revision) once the instances forked from it have exited:
        they are its children and would die with it."""
        key = (fn.id, fn.revision)
        if key in self._zygotes:
            self._released.add(key)
            self._close_if_unused(key)

    def _close_if_unused(self, key: tuple[str, int]) -> None:
        if key not in self._released or key in self._instance_key.values():
            return
        self._released.discard(key)
        zygote = self._zygotes.pop(key, None)
        if zygote is not None:
            task = asyncio.get_running_loop().create_task(zygote.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            log.info("zygote stopped", extra={"function_id": key[0], "revision": key[1]})

    def _instance_exited(self, pid: int, status: int) -> None:
        instance = self._by_pid.pop(pid, None)
        if instance is not None:
            instance.exited(status)

    async def start_instance(
        self, fn: FunctionConfig, on_exit: Callable[[Instance], None]
    ) -> Instance:
        iid = secrets.token_hex(6)
        cgroup = self.limiter.prepare(iid, fn.memory_mb)

        key = (fn.id, fn.revision)

        def exited(instance: LocalInstance) -> None:
            self._all.pop(iid, None)
            self._starting.pop(iid, None)
            self.limiter.release(iid)
            self._instance_key.pop(iid, None)
            on_exit(instance)
            self._close_if_unused(key)

        instance = LocalInstance(iid, fn, exited, lambda: self.limiter.oom_killed(iid))
        self._starting[iid] = instance
        self._all[iid] = instance
        self._instance_key[iid] = key
        zygote = self._zygote(fn)
        try:
            instance.pid = await zygote.fork(iid, cgroup)
            self._by_pid[instance.pid] = instance
            await asyncio.wait_for(asyncio.shield(instance.ready), INIT_TIMEOUT_S)
        except InitError:
            raise
        except BaseException as exc:
            instance.kill()
            self._all.pop(iid, None)
            self.limiter.release(iid)
            if not instance.pid:  # never forked: no exit will be reported
                self._instance_key.pop(iid, None)
                self._close_if_unused(key)
            if isinstance(exc, asyncio.TimeoutError):
                raise InitError(
                    f"init did not finish within {INIT_TIMEOUT_S:.0f} seconds", function_id=fn.id
                ) from exc
            raise
        finally:
            self._starting.pop(iid, None)
        if instance.modules:
            zygote.add_preload(instance.modules)
            self._remember(fn, list(zygote.preload))
        return instance


def _fields(fn: FunctionConfig) -> dict[str, Any]:
    return {name: getattr(fn, name) for name in fn.__dataclass_fields__}
