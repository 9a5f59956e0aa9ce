"""Drive `wrk` and read its report: requests/s, errors and the latency spectrum.

wrk runs `wrk_report.lua`, whose `done()` prints one `WRK_JSON {...}` line with the request
count, the run's duration, every kind of error wrk counts (connect, read, write and timeout
socket errors, and non-2xx/3xx responses) and latency percentiles from 1 to 99.99 taken from
wrk's histogram of every request. `parse` turns that line into a `Load`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).parent / "wrk_report.lua"
MARKER = "WRK_JSON "


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no report."""


@dataclass(frozen=True, slots=True)
class Load:
    """One wrk run's result; latencies in milliseconds."""

    requests: int
    duration_s: float
    errors: dict[str, int]  # connect, read, write, timeout (socket errors) and status (non-2xx)
    percentiles: tuple[tuple[float, float], ...]  # (percentile, latency ms), ascending
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def latency(self, percentile: float) -> float:
        """The latency at `percentile` (one wrk reported: 1..99, 99.5, 99.9, 99.95, 99.99)."""
        for p, ms in self.percentiles:
            if p == percentile:
                return ms
        raise KeyError(f"wrk reported no {percentile} percentile")


def parse(stdout: str) -> Load:
    """Read the `WRK_JSON` line that wrk_report.lua's `done()` prints."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise WrkError(f"wrk printed no {MARKER.strip()} line; its output was:\n{stdout}")
    try:
        data = json.loads(line[len(MARKER) :])
        return Load(
            requests=int(data["requests"]),
            duration_s=int(data["duration_us"]) / 1e6,
            errors={kind: int(n) for kind, n in data["errors"].items()},
            percentiles=tuple((float(p), int(us) / 1000) for p, us in data["percentiles"]),
            max_ms=int(data["latency_us"]["max"]) / 1000,
        )
    except (ValueError, KeyError, TypeError) as e:
        raise WrkError(f"wrk's report is not what wrk_report.lua writes ({e!r}): {line}") from e


def require_wrk() -> str:
    """The path of wrk, or a WrkError saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkError("wrk is not installed: apt-get install wrk (Debian package `wrk`)")
    return path


def run(url: str, connections: int, duration_s: int, timeout_s: int = 5) -> Load:
    """Load `url` with `connections` keep-alive connections from one wrk thread."""
    cmd = [require_wrk(), "-t1", f"-c{connections}", f"-d{duration_s}s"]
    cmd += [f"--timeout={timeout_s}s", "-s", str(SCRIPT), url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    return parse(done.stdout)
