"""A function's zygote: a process that has imported the runtime and the function's libraries,
and forks a new instance whenever the platform asks for one.

It never imports the handler's own module, so the handler's top-level code still runs once
per instance, after the fork, exactly as Lambda's init phase does. It stays single-threaded:
forking a process that has threads is unsafe, so a preload that starts a thread is reported.

Started by the local executor as `python -m lamina.runtime.zygote` with:
    LAMINA_ZYGOTE_FD    the control socket's file descriptor
    LAMINA_ZYGOTE_SPEC  JSON: handler, service_path, concurrency, info, preload
    LAMINA_PARENT_PID   the platform's pid (the zygote dies with it)
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import resource
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from lamina.runtime.context import FunctionInfo
from lamina.runtime.instance import InstanceConfig, run_instance
from lamina.runtime.protocol import recv_frame, send_frame

__all__ = ["die_with_parent", "main"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != expected_parent:
        os._exit(1)


def _pydantic_plugins() -> None:
    # pydantic finds its plugins on the first model a process builds, by reading the entry
    # points of every installed distribution (3.4 ms with 105 of them): most of the init of a
    # function that defines one model. The result is a module-level cache.
    from pydantic.plugin._loader import get_plugins

    get_plugins()


# Process-wide caches that a library fills on first use, which the zygote fills once after its
# preloads so that every instance forks with them filled: (the preloaded module that enables
# it, what fills it). None runs the function's code, so its init stays per instance.
_WARMERS: tuple[tuple[str, Callable[[], object]], ...] = (("pydantic", _pydantic_plugins),)


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


class Zygote:
    def __init__(self, ctl: socket.socket, spec: dict[str, Any]) -> None:
        self.ctl = ctl
        self.spec = spec
        self.info = FunctionInfo(**spec["info"])
        self.config = InstanceConfig(
            handler=spec["handler"],
            service_path=spec["service_path"],
            concurrency=spec["concurrency"],
            info=self.info,
        )
        self.children: set[int] = set()

    def preload(self, modules: list[str]) -> list[str]:
        """Import `modules`; return those that failed or would make forking unsafe."""
        rejected = []
        for name in modules:
            if name in sys.modules:
                continue
            try:
                importlib.import_module(name)
            except Exception as exc:
                # Learned modules may not import on their own; only `preload:` failures matter.
                if name in self.spec.get("explicit_preload", ()):
                    print(f"lamina zygote: preload of {name!r} failed: {exc}", file=sys.stderr)
                rejected.append(name)
                continue
            if _thread_count() > 1:
                # The module started a thread at import; forking now would copy a process
                # with a thread in an unknown state. The zygote stops; the platform restarts it
                # without this module.
                send_frame(self.ctl, {"op": "unsafe_preload", "module": name})
                os._exit(3)
        self.warm(modules)
        return rejected

    def warm(self, preloaded: list[str]) -> None:
        """Fill the caches of `_WARMERS` whose module (or one of its submodules) was among
        `preloaded`. One that fails (a library version that moved it) is left for each
        instance to fill. One that starts a thread (a plugin that does) is reported as that
        module's unsafe preload: the platform restarts the zygote without the module and its
        submodules, so without the warmer."""
        for module, fill in _WARMERS:
            wanted = any(m == module or m.startswith(f"{module}.") for m in preloaded)
            if not wanted or module not in sys.modules:
                continue
            try:
                fill()
            except Exception:  # the instance fills it itself, as it would without a zygote
                continue
            if _thread_count() > 1:
                send_frame(self.ctl, {"op": "unsafe_preload", "module": module})
                os._exit(3)

    def run(self) -> NoReturn:
        wake_r, wake_w = socket.socketpair()
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        base_modules = frozenset(sys.modules)
        send_frame(self.ctl, {"op": "zygote_ready", "pid": os.getpid()})
        selector = selectors.DefaultSelector()
        selector.register(self.ctl, selectors.EVENT_READ, "ctl")
        selector.register(wake_r, selectors.EVENT_READ, "wake")
        while True:
            for key, _ in selector.select():
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        wake_r.recv(4096)
                    self._reap()
                    continue
                message = recv_frame(self.ctl)
                if message is None:
                    os._exit(0)  # the platform is gone; instances die with us (PDEATHSIG)
                op = message.get("op")
                if op == "fork":
                    # Everything the zygote holds now is old to the instance: frozen, the
                    # instance's collections never write to those objects, so their memory
                    # pages stay shared with the zygote instead of being copied.
                    gc.freeze()
                    pid = os.fork()
                    if pid == 0:
                        gc.enable()
                        selector.close()
                        for s in (wake_r, wake_w, self.ctl):
                            s.close()
                        self._become_instance(message, base_modules)
                    self.children.add(pid)
                    send_frame(self.ctl, {"op": "forked", "iid": message["iid"], "pid": pid})
                elif op == "preload":
                    self.preload(message.get("modules", []))
                    base_modules = frozenset(sys.modules)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            send_frame(self.ctl, {"op": "exited", "pid": pid, "status": code})

    def _become_instance(self, message: dict[str, Any], base_modules: frozenset[str]) -> NoReturn:
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            die_with_parent(self._zygote_pid)
            _limit_memory(message.get("cgroup"), int(message["memory_mb"]))
            iid = message["iid"]
            os.environ["AWS_LAMBDA_LOG_STREAM_NAME"] = f"{self.info.log_stream}/{iid}"
            info = FunctionInfo(
                **{**self.spec["info"], "log_stream": f"{self.info.log_stream}/{iid}"}
            )
            config = InstanceConfig(
                handler=self.config.handler,
                service_path=self.config.service_path,
                concurrency=self.config.concurrency,
                info=info,
            )
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.spec["platform_socket"])
            send_frame(sock, {"op": "hello", "iid": iid, "pid": os.getpid()})
            run_instance(sock, config, base_modules)
        except BaseException:  # never return into the zygote's loop from a child
            import traceback

            traceback.print_exc()
            os._exit(1)

    @property
    def _zygote_pid(self) -> int:
        return self.spec["_zygote_pid"]  # type: ignore[no-any-return]


def _limit_memory(cgroup: str | None, memory_mb: int) -> None:
    """Join the instance's memory cgroup, or cap the address space when there is none."""
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
        return
    # Fallback: RLIMIT_AS counts virtual memory, so allow what the process maps already
    # (shared with the zygote) plus the configured memory.
    with open("/proc/self/statm") as f:
        vsize_pages = int(f.read().split()[0])
    limit = vsize_pages * os.sysconf("SC_PAGE_SIZE") + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> NoReturn:
    # No collections in the zygote (it only imports and forks): a collection would leave
    # freed holes in pages that every instance then shares, or copies when it fills them.
    gc.disable()
    die_with_parent(int(os.environ.pop("LAMINA_PARENT_PID")))
    ctl = socket.socket(fileno=int(os.environ.pop("LAMINA_ZYGOTE_FD")))
    spec = json.loads(os.environ.pop("LAMINA_ZYGOTE_SPEC"))
    spec["_zygote_pid"] = os.getpid()
    service_path = spec["service_path"]
    sys.path.insert(0, service_path)
    os.chdir(service_path)
    zygote = Zygote(ctl, spec)
    zygote.preload(list(spec.get("preload", [])))
    zygote.run()


if __name__ == "__main__":
    main()
