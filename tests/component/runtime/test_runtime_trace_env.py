"""`_X_AMZN_TRACE_ID` is set per invocation without growing the instance's memory."""

from __future__ import annotations

import os
import subprocess
import sys

from lamina.runtime.instance import XRAY_ENV, set_trace_env


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_the_handler_sees_the_trace_id_and_its_removal() -> None:
    set_trace_env("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    assert os.environ[XRAY_ENV].startswith("Root=1-5759e988")
    assert os.getenv(XRAY_ENV, "").endswith("Sampled=1")
    # A program started with the handler's environment gets it too.
    child = subprocess.run(
        [sys.executable, "-c", f"import os; print(os.environ['{XRAY_ENV}'])"],
        env=os.environ,
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == os.environ[XRAY_ENV]
    set_trace_env(None)
    assert XRAY_ENV not in os.environ


def test_a_fresh_trace_id_per_invocation_does_not_grow_memory() -> None:
    # Through C's setenv, 200,000 distinct values kept ~30 MB for good (glibc never frees one).
    set_trace_env("Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1")
    before = _rss_kb()
    for n in range(200_000):
        set_trace_env(f"Root=1-{n:08x}-{n:024x};Parent={n:016x};Sampled=1")
    set_trace_env(None)
    assert _rss_kb() - before < 4096
