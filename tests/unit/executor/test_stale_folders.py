"""Folders of killed executors (an actor killed at its timeout, a platform killed with SIGKILL)
are removed by the next executor that starts on the machine; nothing else is."""

from __future__ import annotations

import os
from pathlib import Path

from lamina.executor.local.backend import remove_stale_folders


def _dead_pid() -> int:
    """A pid no process can have: one past the kernel's largest."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def test_only_folders_of_processes_that_no_longer_run_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / f"lamina-{_dead_pid()}-a1b2"
    (dead / "runtime").mkdir(parents=True)
    (dead / "runtime" / "lamina.pth").write_text("x")
    alive = tmp_path / f"lamina-{os.getpid()}-c3d4"
    alive.mkdir()
    other = tmp_path / "lamina-ray-e5f6"  # not an executor's folder
    other.mkdir()
    plain_file = tmp_path / f"lamina-{_dead_pid()}-file"
    plain_file.write_text("not a folder")

    removed = remove_stale_folders(tmp_path)

    assert removed == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [alive.name, other.name, plain_file.name]
    )
