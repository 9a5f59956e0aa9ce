"""Replay an invocation trace through a keep-alive policy on simulated time.

The model is the paper's: per function, one instance is either loaded or not. An invocation
that arrives while the function runs or while an instance is kept is warm; otherwise it is a
cold start. Once the function has nothing running (at time `end`), the policy's `Windows`
say what happens next: no instance until `end + prewarm_s`, then one kept until
`end + prewarm_s + keep_alive_s`. An invocation arriving `gap` seconds after `end` is warm
when `prewarm_s <= gap < prewarm_s + keep_alive_s`, and the time an instance sat loaded
without running, `clamp(gap - prewarm_s, 0, keep_alive_s)`, costs its memory: that is the
idle memory-time. After the last invocation the idle time counts up to the end of the trace.

The hybrid policy is `lamina.scaling.keepalive` itself (`on_idle`, `on_arrival`), fed the
trace's times as its clock, so the simulator measures the code the invoker runs. Pure: the
CSV reading and writing live in `lamina.cli.simulate`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lamina.scaling.keepalive import HybridSpec, IdleHistory, Windows, on_arrival, on_idle

__all__ = [
    "FixedKeepAlive",
    "FunctionResult",
    "Invocation",
    "Policy",
    "SimulationResult",
    "nearest_rank",
    "replay",
]


@dataclass(frozen=True, slots=True)
class Invocation:
    """One row of a trace."""

    function: str  # function id
    start_s: float  # seconds from the trace's origin
    duration_s: float  # execution time, seconds; >= 0
    memory_mb: float  # memory the instance holds, MB; >= 0


@dataclass(frozen=True, slots=True)
class FixedKeepAlive:
    """Keep the instance `keep_alive_s` after each invocation: Lambda's and Lamina's default."""

    keep_alive_s: float


Policy = FixedKeepAlive | HybridSpec


@dataclass(frozen=True, slots=True)
class FunctionResult:
    """One function's outcome."""

    function: str
    invocations: int
    cold_starts: int
    idle_mb_s: float  # memory x seconds its instance was kept loaded and not running

    @property
    def cold_pct(self) -> float:
        return 100.0 * self.cold_starts / self.invocations if self.invocations else 0.0


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Every function's outcome under one policy."""

    policy: str
    functions: tuple[FunctionResult, ...]  # sorted by function id

    @property
    def invocations(self) -> int:
        return sum(f.invocations for f in self.functions)

    @property
    def cold_starts(self) -> int:
        return sum(f.cold_starts for f in self.functions)

    @property
    def idle_gb_s(self) -> float:
        return sum(f.idle_mb_s for f in self.functions) / 1024

    def cold_pct_at(self, percentile: float) -> float:
        """The cold-start % of the function at `percentile` when sorted by cold-start %."""
        return nearest_rank(sorted(f.cold_pct for f in self.functions), percentile)


def nearest_rank(ordered: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile of ascending `ordered`: element ceil(p/100 * n), 1-based.

    Of (0, 10, 20, 50) the 50th is 10 and the 75th is 20; 0.0 when empty.
    """
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def policy_name(policy: Policy) -> str:
    """`fixed:10m` or `hybrid`."""
    if isinstance(policy, HybridSpec):
        return "hybrid"
    seconds = policy.keep_alive_s
    if seconds % 60 == 0:
        return f"fixed:{seconds / 60:g}m"
    return f"fixed:{seconds:g}s"


def _idle_cost_s(windows: Windows, gap_s: float) -> float:
    """Seconds an instance was loaded but idle during a gap of `gap_s` after going idle."""
    return min(max(gap_s - windows.prewarm_s, 0.0), windows.keep_alive_s)


def _warm(windows: Windows, gap_s: float) -> bool:
    return windows.prewarm_s <= gap_s < windows.loaded_until_s


def _replay_function(
    function: str, invocations: Sequence[Invocation], policy: Policy, end_s: float
) -> FunctionResult:
    history = IdleHistory()
    busy_until: float | None = None
    memory_mb = 0.0
    cold = 0
    idle_mb_s = 0.0

    def went_idle(at_s: float) -> Windows:
        nonlocal history
        if isinstance(policy, HybridSpec):
            history, windows = on_idle(history, at_s, policy)
            return windows
        return Windows(0.0, policy.keep_alive_s)

    for inv in invocations:
        if busy_until is None:
            cold += 1
        elif inv.start_s < busy_until:
            pass  # runs on the instance that is running now
        else:
            windows = went_idle(busy_until)
            gap_s = inv.start_s - busy_until
            cold += not _warm(windows, gap_s)
            idle_mb_s += memory_mb * _idle_cost_s(windows, gap_s)
            if isinstance(policy, HybridSpec):
                history = on_arrival(history, inv.start_s, policy)
        memory_mb = inv.memory_mb
        end = inv.start_s + inv.duration_s
        busy_until = end if busy_until is None else max(busy_until, end)
    if busy_until is not None and end_s > busy_until:
        idle_mb_s += memory_mb * _idle_cost_s(went_idle(busy_until), end_s - busy_until)
    return FunctionResult(function, len(invocations), cold, idle_mb_s)


def replay(
    invocations: Iterable[Invocation], policy: Policy, end_s: float | None = None
) -> SimulationResult:
    """Run every function of the trace through `policy`; idle time counts up to `end_s`
    (default: when the last invocation finishes)."""
    by_function: Mapping[str, list[Invocation]] = defaultdict(list)
    last = 0.0
    for inv in invocations:
        by_function[inv.function].append(inv)
        last = max(last, inv.start_s + inv.duration_s)
    end = last if end_s is None else end_s
    results = tuple(
        _replay_function(fid, sorted(rows, key=lambda r: r.start_s), policy, end)
        for fid, rows in sorted(by_function.items())
    )
    return SimulationResult(policy_name(policy), results)
