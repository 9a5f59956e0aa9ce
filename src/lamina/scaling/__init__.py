"""Scaling policy: from a snapshot of one function's pool, how many instances to start and stop.

Scaling decides; it never starts a process, reads a clock or takes a lock: the invoker observes
its pool, calls `decide(snapshot, spec, state)` and applies the returned `Decision`. Entry
points are `decide` with `ScalingSpec`, `PoolSnapshot`, `InstanceView`, `ScalingState` and
`Decision`; the helpers it is built from are in `lamina.scaling.policy`. Predictive keep-alive
(`keep_alive: auto`) is `lamina.scaling.keepalive` (`HybridSpec`, `IdleHistory`, `on_arrival`,
`on_idle`), and `lamina.scaling.simulate` replays traces through it.
"""

from __future__ import annotations

from lamina.scaling.keepalive import HybridSpec, IdleHistory, Windows, on_arrival, on_idle
from lamina.scaling.policy import (
    Decision,
    InstanceView,
    PoolSnapshot,
    ScalingSpec,
    ScalingState,
    decide,
)

__all__ = [
    "Decision",
    "HybridSpec",
    "IdleHistory",
    "InstanceView",
    "PoolSnapshot",
    "ScalingSpec",
    "ScalingState",
    "Windows",
    "decide",
    "on_arrival",
    "on_idle",
]
