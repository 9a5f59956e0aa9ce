"""Memory limits for instances: a cgroup per instance where Linux lets us make one, else none
here (the instance caps its own address space with RLIMIT_AS after the fork).

A cgroup limit is enforced by the kernel from outside the instance: past it, the kernel's OOM
killer sends SIGKILL, and `oom_killed()` tells that apart from any other SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupLimiter", "MemoryLimiter", "detect_limiter"]

log = logging.getLogger(__name__)


class MemoryLimiter:
    """No cgroup: instances fall back to RLIMIT_AS (see `lamina.runtime.zygote`)."""

    kind = "rlimit"

    def prepare(self, iid: str, memory_mb: int) -> str | None:
        """Create the limit for instance `iid`; the path the instance joins, or None."""
        return None

    def oom_killed(self, iid: str) -> bool:
        return False

    def peak_bytes(self, iid: str) -> int | None:
        return None

    def release(self, iid: str) -> None:
        """Remove what `prepare` made, once the instance has exited."""

    def close(self) -> None:
        """Remove the parent cgroup."""


@dataclass(frozen=True, slots=True)
class _Files:
    limit: str
    events: str
    peak: str


_V1 = _Files(
    limit="memory.limit_in_bytes", events="memory.oom_control", peak="memory.max_usage_in_bytes"
)
_V2 = _Files(limit="memory.max", events="memory.events", peak="memory.peak")


class CgroupLimiter(MemoryLimiter):
    """One child cgroup per instance under `base` (cgroup v1 memory controller, or v2)."""

    def __init__(self, base: Path, files: _Files, kind: str) -> None:
        self.base = base
        self.files = files
        self.kind = kind

    def prepare(self, iid: str, memory_mb: int) -> str | None:
        path = self.base / iid
        path.mkdir(exist_ok=True)
        (path / self.files.limit).write_text(str(memory_mb * 1024 * 1024))
        if self.kind == "cgroup-v2":
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
        return str(path)

    def oom_killed(self, iid: str) -> bool:
        try:
            text = (self.base / iid / self.files.events).read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip() not in ("", "0"):
                return True
        return False

    def peak_bytes(self, iid: str) -> int | None:
        try:
            return int((self.base / iid / self.files.peak).read_text())
        except (OSError, ValueError):
            return None

    def release(self, iid: str) -> None:
        with contextlib.suppress(OSError):
            (self.base / iid).rmdir()

    def close(self) -> None:
        if self.base.exists():
            for child in self.base.iterdir():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                self.base.rmdir()


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path for `controller` ("" selects the v2 unified line)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, controllers, path = line.split(":", 2)
            if controller in controllers.split(",") or (controller == "" and _id == "0"):
                return path
    return None


def _remove_stale(parent: Path) -> None:
    """Remove cgroups left by platforms that were killed (their pid no longer runs)."""
    with contextlib.suppress(OSError):
        for old in parent.glob("lamina-*-*"):
            pid = old.name.split("-")[1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                CgroupLimiter(old, _V1, "stale").close()


def _try(base: Path, files: _Files, kind: str) -> CgroupLimiter | None:
    _remove_stale(base.parent)
    try:
        base.mkdir(parents=False, exist_ok=True)
        if kind == "cgroup-v2":
            (base / "cgroup.subtree_control").write_text("+memory")
        probe = base / "probe"
        probe.mkdir(exist_ok=True)
        ok = (probe / files.limit).exists()
        probe.rmdir()
    except OSError:
        return None
    if not ok:
        with contextlib.suppress(OSError):
            base.rmdir()
        return None
    return CgroupLimiter(base, files, kind)


def detect_limiter(name: str, root: Path = Path("/sys/fs/cgroup")) -> MemoryLimiter:
    """The best limiter this machine allows; `name` names the platform's parent cgroup."""
    v1 = _own_cgroup("memory")
    if v1 is not None and (root / "memory").is_dir():
        limiter = _try(root / "memory" / v1.lstrip("/") / name, _V1, "cgroup-v1")
        if limiter:
            return limiter
    v2 = _own_cgroup("")
    if v2 is not None and (root / "cgroup.controllers").exists():
        parent = root / v2.lstrip("/")
        with contextlib.suppress(OSError):
            (parent / "cgroup.subtree_control").write_text("+memory")
        limiter = _try(parent / name, _V2, "cgroup-v2")
        if limiter:
            return limiter
    log.info("memory limits use RLIMIT_AS: no writable memory cgroup", extra={"pid": os.getpid()})
    return MemoryLimiter()
