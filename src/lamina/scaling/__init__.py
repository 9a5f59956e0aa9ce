"""Scaling policy: from a snapshot of one function's pool, how many instances to start and stop.

Scaling decides; it never starts a process, reads a clock or takes a lock: the invoker observes
its pool, calls `decide(snapshot, spec, state)` and applies the returned `Decision`. Entry
points are `decide` with `ScalingSpec`, `PoolSnapshot`, `InstanceView`, `ScalingState` and
`Decision`; the helpers it is built from are in `lamina.scaling.policy`.
"""

from __future__ import annotations

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
    "InstanceView",
    "PoolSnapshot",
    "ScalingSpec",
    "ScalingState",
    "decide",
]
