"""The reactive scaling policy: from one pool snapshot, how many instances to start and stop.

`decide` follows Lambda: every invocation that finds no free slot causes a cold start, up to
`max_instances`; an instance idle for `keep_alive_s` is stopped, down to `min_instances`.
It is built from the small helpers below, each pure and tested on its own
(tests/unit/scaling/test_scaling_helpers.py); the mechanism that applies a `Decision` lives in
`lamina.invoker`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lamina.scaling.keepalive import HybridSpec

__all__ = [
    "EXPIRY_TOLERANCE_S",
    "Decision",
    "InstanceView",
    "PoolSnapshot",
    "ScalingSpec",
    "ScalingState",
    "clamp",
    "decide",
    "expired_idle",
    "expiry_s",
    "floor_at_min",
    "instances_for_demand",
    "next_expiry",
]

EXPIRY_TOLERANCE_S = 1e-6
"""An instance counts as expired this much before `idle_since_s + keep_alive_s`.

Integer-millisecond clocks report `0.3` at 300 ms, but an instance idle since 0.1 s with a
keep-alive of 0.2 s expires at `0.1 + 0.2 == 0.30000000000000004`. Without the tolerance the
pool would wake at 300 ms, find nothing expired and be told to wake at 300 ms again.
Pinned by `test_an_expiry_reached_on_a_millisecond_clock_counts_despite_float_rounding`.
"""


@dataclass(frozen=True, slots=True)
class ScalingSpec:
    """How one function scales. Validated on construction; the manifest builds it."""

    min_instances: int  # kept warm even when idle, started at boot; 0..max_instances
    max_instances: int  # hard cap on ready + starting instances; >= 1
    concurrency: int  # invocations at once per instance; >= 1
    keep_alive_s: float  # an instance idle this long is stopped; finite, >= 0 (0: stop when idle)
    # predictive keep-alive (`keep_alive: auto`): the invoker derives keep_alive_s and pre-warm
    # times from it; None keeps keep_alive_s fixed
    hybrid: HybridSpec | None = None

    def __post_init__(self) -> None:
        _require_int("max_instances", self.max_instances, 1, None)
        _require_int("min_instances", self.min_instances, 0, self.max_instances)
        _require_int("concurrency", self.concurrency, 1, None)
        keep_alive = self.keep_alive_s
        if (
            isinstance(keep_alive, bool)
            or not isinstance(keep_alive, int | float)
            or not math.isfinite(keep_alive)
            or keep_alive < 0
        ):
            raise ValueError(
                f"ScalingSpec.keep_alive_s: expected a finite number of seconds >= 0, "
                f"got {keep_alive!r}"
            )


def _require_int(field: str, value: object, low: int, high: int | None) -> None:
    """Raise ValueError naming `field` unless `value` is an int in `low..high` (inclusive)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"ScalingSpec.{field}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        expected = f">= {low}" if high is None else f"{low}-{high}"
        hint = " (0..max_instances)" if field == "min_instances" else ""
        raise ValueError(f"ScalingSpec.{field}: expected {expected}{hint}, got {value}")


@dataclass(frozen=True, slots=True)
class InstanceView:
    """What the policy sees of one ready instance."""

    in_flight: int  # invocations running on it now; 0..concurrency
    idle_since_s: float | None  # monotonic s it became fully idle; None while in_flight > 0
    started_s: float  # monotonic s it became ready


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """One function's pool at one moment, as the invoker observed it."""

    now_s: float  # monotonic seconds, supplied by the caller
    starting: int  # instances being started, not ready yet; >= 0
    queued: int  # invocations waiting for a free slot; >= 0
    instances: Mapping[str, InstanceView]  # ready instances by id


@dataclass(frozen=True, slots=True)
class Decision:
    """What the invoker should do now, and when to ask again if nothing else happens."""

    start: int  # how many instances to start now; >= 0
    stop: tuple[str, ...]  # ids of idle instances to stop now, oldest-idle first
    reason: str  # why, for the log, e.g. "scale 2 -> 5: 3 queued, 2 busy"; "" when no change
    next_check_s: float | None  # absolute monotonic s of the next keep-alive expiry; None if none


@dataclass(frozen=True, slots=True)
class ScalingState:
    """What the policy carries from one call to the next; `ScalingState()` starts a pool.

    The reactive policy needs nothing yet. The predictive keep-alive (`keep_alive: auto`) keeps
    its own per-function history, `lamina.scaling.keepalive.IdleHistory`, and hands `decide`
    the keep-alive it chose through `ScalingSpec.keep_alive_s`.
    """


def clamp(value: int, low: int, high: int) -> int:
    """Return `value` limited to `low..high`; `low` wins if the bounds cross."""
    return max(low, min(value, high))


def instances_for_demand(demand: int, concurrency: int) -> int:
    """Instances needed to run `demand` invocations at once, `concurrency` per instance.

    Ceiling division: 5 invocations at concurrency 4 need 2 instances; 0 need 0.
    """
    return -(-max(0, demand) // concurrency)


def _idle_since_s(view: InstanceView) -> float | None:
    """When `view` became fully idle, or None while it runs something.

    An idle instance that reports no `idle_since_s` is taken as idle since it became ready.
    """
    if view.in_flight > 0:
        return None
    return view.started_s if view.idle_since_s is None else view.idle_since_s


def expiry_s(idle_since_s: float, keep_alive_s: float) -> float:
    """The monotonic time at which an instance idle since `idle_since_s` may be stopped."""
    return idle_since_s + keep_alive_s


def _idle_by_age(instances: Mapping[str, InstanceView]) -> list[tuple[float, str]]:
    """`(idle_since_s, id)` of every idle instance, oldest-idle first, ties by id."""
    idle = ((_idle_since_s(view), iid) for iid, view in instances.items())
    return sorted((since, iid) for since, iid in idle if since is not None)


def expired_idle(
    instances: Mapping[str, InstanceView], now_s: float, keep_alive_s: float
) -> tuple[str, ...]:
    """Ids of idle instances whose keep-alive has run out at `now_s`, oldest-idle first.

    With `keep_alive_s == 0` that is every idle instance. See `EXPIRY_TOLERANCE_S`.
    """
    return tuple(
        iid
        for since, iid in _idle_by_age(instances)
        if now_s >= expiry_s(since, keep_alive_s) - EXPIRY_TOLERANCE_S
    )


def floor_at_min(candidates: Iterable[str], live: int, min_instances: int) -> tuple[str, ...]:
    """The first stop candidates that keep `live` (ready + starting) at or above the minimum.

    With 3 live, min_instances 1 and candidates (a, b, c): stops (a, b).
    """
    room = max(0, live - min_instances)
    return tuple(candidates)[:room]


def next_expiry(
    instances: Mapping[str, InstanceView],
    now_s: float,
    keep_alive_s: float,
    room: int,
) -> float | None:
    """The earliest future keep-alive expiry among idle instances, if one could then be stopped.

    `room` is how many more instances may be stopped before reaching the minimum; with no room
    nothing will change by time alone, so the answer is None.
    """
    if room <= 0:
        return None
    upcoming = (expiry_s(since, keep_alive_s) for since, _ in _idle_by_age(instances))
    return min(
        (t for t in upcoming if now_s < t - EXPIRY_TOLERANCE_S),
        default=None,
    )


def _reason(
    snap: PoolSnapshot, spec: ScalingSpec, live: int, start: int, stop: tuple[str, ...], wanted: int
) -> str:
    """Explain a change for the log: `scale 2 -> 5: 3 queued, 2 busy`; "" when nothing changes."""
    if not start and not stop:
        return ""
    why: list[str] = []
    if start and wanted < spec.min_instances:
        why.append(f"min_instances {spec.min_instances}")
    elif start:
        busy = sum(1 for view in snap.instances.values() if view.in_flight > 0)
        why.append(f"{snap.queued} queued, {busy} busy")
        if wanted > spec.max_instances:
            why.append(f"capped at max_instances {spec.max_instances}")
    if stop:
        why.append(f"{len(stop)} idle for keep_alive_s {spec.keep_alive_s:g}")
    return f"scale {live} -> {live + start - len(stop)}: {', '.join(why)}"


def decide(
    snap: PoolSnapshot, spec: ScalingSpec, state: ScalingState
) -> tuple[Decision, ScalingState]:
    """Return how many instances to start and which idle ones to stop, plus the next state.

    demand = in flight + queued; needed = ceil(demand / concurrency) clamped to
    min_instances..max_instances; start = needed - (ready + starting), never negative. Free
    slots count: at concurrency 4, one ready instance running 1 with 2 queued starts nothing.
    Idle instances past their keep-alive are stopped oldest-idle first, never below
    min_instances (ready + starting) and never while anything is queued. `next_check_s` is the
    next expiry that could stop an instance; the caller asks again then, or on any event.
    """
    live = len(snap.instances) + snap.starting
    in_flight = sum(view.in_flight for view in snap.instances.values())
    wanted = instances_for_demand(in_flight + snap.queued, spec.concurrency)
    needed = clamp(wanted, spec.min_instances, spec.max_instances)
    start = max(0, needed - live)

    stop: tuple[str, ...] = ()
    if snap.queued == 0 and start == 0:
        expired = expired_idle(snap.instances, snap.now_s, spec.keep_alive_s)
        stop = floor_at_min(expired, live, spec.min_instances)

    remaining = {iid: view for iid, view in snap.instances.items() if iid not in stop}
    room = live + start - len(stop) - spec.min_instances
    decision = Decision(
        start=start,
        stop=stop,
        reason=_reason(snap, spec, live, start, stop, wanted),
        next_check_s=next_expiry(remaining, snap.now_s, spec.keep_alive_s, room),
    )
    return decision, state
