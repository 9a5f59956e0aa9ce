"""The platform's handle on one function's zygote process: start it, ask it to fork, hear
which instances exited and how."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

import lamina
from lamina.errors import PlatformError
from lamina.executor.local.runtime_path import BOOT, RuntimePath
from lamina.executor.types import FunctionConfig
from lamina.runtime.protocol import FrameReader, encode

__all__ = ["ZygoteProcess"]

log = logging.getLogger(__name__)

_LAMINA_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(lamina.__file__)))


class ZygoteProcess(asyncio.Protocol):
    """A running zygote for one function; restarted on demand if it dies."""

    def __init__(
        self,
        fn: FunctionConfig,
        explicit_preload: tuple[str, ...],
        platform_socket: str,
        on_instance_exit: Callable[[int, int], None],
        on_unsafe_preload: Callable[[str], None],
        runtime_path: Callable[[], Awaitable[RuntimePath]] | None = None,
        *,
        spare: bool = True,  # keep a forked child waiting for the next cold start
        spare_cgroup: Callable[[], str | None] | None = None,  # a new cgroup for a spare
        release_cgroup: Callable[[str], None] | None = None,
    ) -> None:
        self.fn = fn
        self.spare = spare
        self._new_spare_cgroup = spare_cgroup
        self._release_cgroup = release_cgroup
        self._spare_cgroup: str | None = None  # the cgroup the zygote's spares join
        self._runtime_path = runtime_path  # what a zygote in a service's venv needs of Lamina
        self.platform_socket = platform_socket
        self._on_instance_exit = on_instance_exit
        self._on_unsafe_preload = on_unsafe_preload
        self.process: asyncio.subprocess.Process | None = None
        self._transport: asyncio.Transport | None = None
        self._frames = FrameReader()
        self._ready: asyncio.Future[None] | None = None
        self._forks: dict[str, asyncio.Future[int]] = {}
        self._lock = asyncio.Lock()
        self.preload: tuple[str, ...] = fn.preload  # explicit ones first, then learned ones
        self._unsafe: set[str] = set()  # modules that stopped the zygote: never preloaded again
        self.explicit_preload = explicit_preload  # from `preload:`; failures are reported

    @property
    def running(self) -> bool:
        return (
            self.process is not None
            and self.process.returncode is None
            and self._transport is not None
        )

    async def ensure_started(self) -> None:
        async with self._lock:
            if self.running:
                return
            while True:
                preloads = len(self.preload)
                try:
                    await self._spawn()
                    return
                except PlatformError:
                    if len(self.preload) < preloads:
                        continue  # it stopped for a preload that starts a thread: without it
                    raise

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        spec: dict[str, Any] = {
            "handler": self.fn.handler,
            "service_path": self.fn.service_path,
            "concurrency": self.fn.concurrency,
            "preload": list(self.preload),
            "explicit_preload": list(self.explicit_preload),
            "platform_socket": self.platform_socket,
            "spare": self.spare,
            "info": {
                "name": self.fn.id,
                "version": self.fn.env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                "arn": self.fn.env.get("LAMINA_FUNCTION_ARN", self.fn.id),
                "memory_mb": self.fn.memory_mb,
                "log_group": self.fn.env.get(
                    "AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{self.fn.id}"
                ),
                "log_stream": self.fn.env.get("AWS_LAMBDA_LOG_STREAM_NAME", self.fn.id),
            },
        }
        env = dict(os.environ)
        env.update(self.fn.env)
        argv = await self._command(env)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env["LAMINA_ZYGOTE_FD"] = str(theirs.fileno())
        env["LAMINA_ZYGOTE_SPEC"] = orjson.dumps(spec).decode()
        env["LAMINA_PARENT_PID"] = str(os.getpid())
        self._ready = loop.create_future()
        self._frames = FrameReader()
        try:
            self.process = await asyncio.create_subprocess_exec(
                *argv,
                pass_fds=(theirs.fileno(),),
                env=env,
                cwd=self.fn.service_path,
                stdin=asyncio.subprocess.DEVNULL,
                # A session of its own (its instances join it): a terminal's Ctrl-C
                # reaches only the platform, which drains and stops instances itself. And
                # Linux's autogroups then give each function one share of the CPU, as the
                # gateway has one: a function with 10 busy instances on 2 cores left a no-op
                # function's p50 as it was, but 10x slower with the instances in the
                # platform's session (benchmarks/run.py --only neighbour, docs/benchmarks.md).
                start_new_session=True,
            )
        finally:
            theirs.close()
        transport, _ = await loop.connect_accepted_socket(lambda: self, ours)
        self._transport = transport
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), 30)
        except (TimeoutError, PlatformError) as exc:
            await self.close()
            raise PlatformError(f"zygote for {self.fn.id} did not start: {exc}") from exc
        log.info("zygote started", extra={"function_id": self.fn.id, "pid": self.process.pid})

    async def _command(self, env: dict[str, str]) -> list[str]:
        """The zygote's command line; sets the PYTHONPATH (and venv variables) in `env`."""
        if not self.fn.venv:
            # The zygote runs in the service folder: make sure it imports this very lamina.
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (_LAMINA_ROOT, env.get("PYTHONPATH", "")) if p
            )
            return [sys.executable, "-m", "lamina.runtime.zygote"]
        # The service's own environment: its python and site-packages, Lamina's package
        # first, the runtime's libraries last (see `runtime_path`).
        assert self._runtime_path is not None
        runtime = await self._runtime_path()
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (runtime.lamina, env.get("PYTHONPATH", "")) if p
        )
        env["VIRTUAL_ENV"] = self.fn.venv
        bin_dir = os.path.join(self.fn.venv, "bin")
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
        return [os.path.join(bin_dir, "python"), "-c", BOOT, runtime.libs]

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        for message in self._frames.feed(data):
            op = message.get("op")
            if op == "zygote_ready":
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(None)
                self._give_spare_cgroup()
            elif op == "forked":
                if message.get("spare_cgroup_used"):  # now the instance's own (renamed)
                    self._spare_cgroup = None
                    self._give_spare_cgroup()
                fut = self._forks.pop(message["iid"], None)
                if fut is not None and not fut.done():
                    fut.set_result(int(message["pid"]))
            elif op == "exited":
                self._on_instance_exit(int(message["pid"]), int(message["status"]))
            elif op == "unsafe_preload":
                module = str(message["module"])
                log.warning(
                    "preloaded module starts a thread; the zygote restarts without it",
                    extra={"function_id": self.fn.id, "preload_module": module},
                )
                # Its submodules too: each would import it (or its warmer would run) again; and
                # for good: instances go on reporting it among the modules they imported.
                self._unsafe.add(module)
                self.preload = tuple(m for m in self.preload if not self._is_unsafe(m))
                self._on_unsafe_preload(module)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        error = PlatformError(f"zygote for {self.fn.id} exited")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        for fut in self._forks.values():
            if not fut.done():
                fut.set_exception(error)
        self._forks.clear()

    # -- requests -------------------------------------------------------------------------------
    async def fork(self, iid: str, cgroup: str | None) -> int:
        """Fork a new instance; returns its pid once the zygote has forked it. A zygote that
        exits before it forks (a learned preload that starts a thread stops it, as the fork
        request is on its way) is started again, once, without that module."""
        try:
            return await self._fork_once(iid, cgroup)
        except PlatformError:
            if self.running:
                raise
        return await self._fork_once(iid, cgroup)

    async def _fork_once(self, iid: str, cgroup: str | None) -> int:
        await self.ensure_started()
        assert self._transport is not None
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._forks[iid] = fut
        self._transport.write(
            encode({"op": "fork", "iid": iid, "memory_mb": self.fn.memory_mb, "cgroup": cgroup})
        )
        return await asyncio.wait_for(fut, 30)

    def _is_unsafe(self, module: str) -> bool:
        """Whether `module` is, or is under, a module that stopped this zygote."""
        return any(module == u or module.startswith(f"{u}.") for u in self._unsafe)

    def _give_spare_cgroup(self) -> None:
        """Hand the zygote a memory cgroup for its spares to join ahead: joining a cgroup can
        wait for an RCU grace period (10-20 ms measured on an idle machine), which a cold start
        then skips: the zygote renames the spare's cgroup to the instance's instead."""
        if not self.spare or self._new_spare_cgroup is None or self._transport is None:
            return
        if self._spare_cgroup is None:
            self._spare_cgroup = self._new_spare_cgroup()
        if self._spare_cgroup is not None:
            self._transport.write(encode({"op": "spare_cgroup", "path": self._spare_cgroup}))

    def add_preload(self, modules: list[str]) -> None:
        """Teach a running zygote modules that instances imported, so later forks skip that work."""
        new = [m for m in modules if m not in self.preload and not self._is_unsafe(m)]
        if new and self._transport is not None:
            self.preload = self.preload + tuple(new)
            self._transport.write(encode({"op": "preload", "modules": new}))

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self._spare_cgroup is not None and self._release_cgroup is not None:
            self._release_cgroup(self._spare_cgroup)  # empty once the spare died with the zygote
            self._spare_cgroup = None
