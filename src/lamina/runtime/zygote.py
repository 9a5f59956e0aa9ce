"""A function's zygote: a process that has imported the runtime and the function's libraries,
and forks a new instance whenever the platform asks for one.

It never imports the handler's own module, so the handler's top-level code still runs once
per instance, after the fork, exactly as Lambda's init phase does. It stays single-threaded:
forking a process that has threads is unsafe, so a preload that starts a thread is reported.

With `spare` (the default), the zygote forks ahead: a spare child waits for the next fork
request, and the zygote forks the next spare shortly after handing it one (`_fork_spare`).

Started by the local executor as `python -m lamina.runtime.zygote` with:
    LAMINA_ZYGOTE_FD    the control socket's file descriptor
    LAMINA_ZYGOTE_SPEC  JSON: handler, service_path, concurrency, info, preload, spare
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
import time
from collections.abc import Callable
from functools import cache, partial
from typing import Any, NoReturn

from lamina.runtime.context import FunctionInfo
from lamina.runtime.instance import InstanceConfig, run_instance
from lamina.runtime.protocol import recv_frame, send_frame

__all__ = ["die_with_parent", "main"]

_PR_SET_PDEATHSIG = 1
_SPARE_READY = b"r"  # what a spare sends the zygote once it waits
_SPARE_DELAY_S = 0.005  # after a fork or a preload, how long to wait before forking a spare


@cache
def _prctl() -> Any:
    """libc's `prctl`, loaded once (10 µs a load): the zygote's children inherit it."""
    return ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent(expected_parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        _prctl()(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
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
        self._spare: tuple[int, socket.socket, str | None] | None = None  # pid, socket, cgroup
        self._spare_ready = False  # the spare said it joined its cgroup and waits
        self._spare_cgroup: str | None = None  # the cgroup spares join (the platform made it)
        self._inherited: tuple[Any, ...] = ()  # the loop's selector and sockets
        with open("/proc/self/comm", "rb") as f:  # what an instance is named, as before
            self._name = f.read().strip()

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
        self._inherited = (selector, wake_r, wake_w, self.ctl)  # what a child closes
        spares = bool(self.spec.get("spare", True))

        def soon() -> float | None:
            """When to fork the next spare: shortly, so that a new instance, or the preloads,
            first have the cores to themselves."""
            return time.monotonic() + _SPARE_DELAY_S if spares else None

        spare_due = time.monotonic() if spares else None  # when to fork the next spare
        while True:
            timeout = None if spare_due is None else max(0.0, spare_due - time.monotonic())
            events = selector.select(timeout)
            if not events and spare_due is not None:
                if self._spare is None:
                    self._fork_spare(base_modules)
                spare_due = None
                continue
            for key, _ in events:
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
                    pid, moved = self._take_spare(message)
                    if pid is None:
                        pid = self._fork(partial(self._become_instance, message, base_modules))
                    forked = {"op": "forked", "iid": message["iid"], "pid": pid}
                    send_frame(self.ctl, forked | {"spare_cgroup_used": moved})
                    spare_due = soon()
                elif op == "spare_cgroup":
                    self._spare_cgroup = message["path"]
                    if self._spare is not None and self._spare[2] is None:
                        self._drop_spare()  # forked before it had a cgroup: fork another
                        spare_due = soon()
                elif op == "preload":
                    self.preload(message.get("modules", []))
                    base_modules = frozenset(sys.modules)
                    self._drop_spare()  # forked before these modules: fork another
                    spare_due = soon()

    def _fork(self, child: Callable[[], object]) -> int:
        """Fork; the child closes what it inherited of the zygote's loop and runs `child`,
        never returning into the zygote's loop."""
        # Everything the zygote holds now is old to the child: frozen, the child's
        # collections never write to those objects, so their memory pages stay shared with
        # the zygote instead of being copied.
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            try:
                gc.enable()
                for closable in self._inherited:
                    closable.close()
                child()
            except BaseException:
                import traceback

                traceback.print_exc()
            os._exit(1)
        self.children.add(pid)
        return pid

    def _fork_spare(self, base_modules: frozenset[str]) -> None:
        """Fork the spare: a child that has done the part of becoming an instance that needs
        no invocation (the fork itself, signals, parent-death signal) and waits. The next
        cold start sends it its fork request instead of forking then: about 2 ms less."""
        ours, theirs = socket.socketpair()
        cgroup = self._spare_cgroup

        def wait_then_become() -> None:
            ours.close()
            _prepare_child(self._zygote_pid)
            if cgroup is not None:
                _join_cgroup(cgroup)
            _set_name(b"lamina-spare")
            try:
                theirs.sendall(_SPARE_READY)  # only now may the zygote rename its cgroup
            except OSError:  # dropped while getting ready (e.g. forked before its cgroup)
                os._exit(0)
            message = recv_frame(theirs)
            if message is None:  # dropped by the zygote (or it is gone)
                os._exit(0)
            theirs.close()
            _set_name(self._name)
            self._become_instance(message, base_modules, prepared=True)

        pid = self._fork(wait_then_become)
        theirs.close()
        self._spare = (pid, ours, cgroup)
        self._spare_ready = False

    def _take_spare(self, message: dict[str, Any]) -> tuple[int | None, bool]:
        """Hand `message` to the spare: its pid (None when there is none, or it died), and
        whether its cgroup became the instance's: renamed to the one the platform made for
        the instance, which the instance then need not join."""
        if self._spare is None:
            return None, False
        pid, sock, cgroup = self._spare
        if not self._spare_ready:
            try:
                said = sock.recv(1, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None, False  # still getting ready: fork now, keep it for the next one
            except OSError:
                said = b""
            if said != _SPARE_READY:  # it died getting ready
                self._drop_spare()
                return None, False
            self._spare_ready = True
        self._spare = None
        moved = False
        target = message.get("cgroup")
        if cgroup and target:  # both made by the platform with this function's memory limit
            try:
                os.rmdir(target)  # made empty for this instance by the platform
                os.rename(cgroup, target)
                moved = True
                self._spare_cgroup = None  # the platform sends another
            except OSError:
                pass  # the instance joins `target` itself, as without a spare
        try:
            send_frame(sock, {**message, "cgroup_moved": moved})
        except OSError:  # it died: a fresh fork joins `target` (renamed or not) itself
            return None, moved
        finally:
            sock.close()
        return pid, moved

    def _drop_spare(self) -> None:
        """The spare exits (it reads the end of its socket); reaped as any child."""
        if self._spare is not None:
            self._spare[1].close()
            self._spare = None

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

    def _become_instance(
        self, message: dict[str, Any], base_modules: frozenset[str], *, prepared: bool = False
    ) -> NoReturn:
        if not prepared:
            _prepare_child(self._zygote_pid)
        if not message.get("cgroup_moved"):  # else it is in its cgroup already
            _limit_memory(message.get("cgroup"), int(message["memory_mb"]))
        iid = message["iid"]
        os.environ["AWS_LAMBDA_LOG_STREAM_NAME"] = f"{self.info.log_stream}/{iid}"
        info = FunctionInfo(**{**self.spec["info"], "log_stream": f"{self.info.log_stream}/{iid}"})
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

    @property
    def _zygote_pid(self) -> int:
        return self.spec["_zygote_pid"]  # type: ignore[no-any-return]


def _prepare_child(zygote_pid: int) -> None:
    """What a child of the zygote does first: default signal handling, and die with the
    zygote."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    die_with_parent(zygote_pid)


_PR_SET_NAME = 15


def _set_name(name: bytes) -> None:
    """The process's name as `ps` and /proc/PID/comm show it (15 bytes at most)."""
    with contextlib.suppress(OSError, AttributeError):
        _prctl()(_PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)


def _join_cgroup(path: str) -> None:
    """Move this process into the cgroup at `path`."""
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def _limit_memory(cgroup: str | None, memory_mb: int) -> None:
    """Join the instance's memory cgroup, or cap the address space when there is none."""
    if cgroup:
        _join_cgroup(cgroup)
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
