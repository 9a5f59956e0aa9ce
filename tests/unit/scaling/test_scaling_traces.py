"""Trace replays: `(t, arrivals, service time)` in, `(t, instances)` out.

`PoolSim` below is a tiny deterministic stand-in for the invoker's pool, good for tests only:
integer-millisecond time, a fixed cold-start delay, invocations packed onto the busiest
instance with a free slot. It calls `decide` after every batch of events and applies the
answer, waking itself at `next_check_s`. The curve it records is ready + starting instances
each time that number changes.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import pytest

from lamina.scaling import InstanceView, PoolSnapshot, ScalingSpec, ScalingState, decide

BASE_MS = 1_000_000  # the monotonic clock reads 1000 s at t=0, as FakeClock does by default
Trace = list[tuple[int, int, int]]  # (t_ms, arrivals, service_ms)
Curve = list[tuple[int, int]]  # (t_ms, ready + starting), at each change
Kind = Literal["arrive", "done", "ready", "check"]


@dataclass
class _Instance:
    started_ms: int
    idle_since_ms: int | None
    in_flight: int = 0


@dataclass
class SimResult:
    curve: Curve
    cold_starts: int
    completed: int


@dataclass
class PoolSim:
    spec: ScalingSpec
    cold_start_ms: int = 100
    ready: dict[str, _Instance] = field(default_factory=dict)
    starting: set[str] = field(default_factory=set)
    queue: deque[int] = field(default_factory=deque)
    events: list[tuple[int, int, Kind, str, int, int]] = field(default_factory=list)
    checks: set[int] = field(default_factory=set)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    state: ScalingState = field(default_factory=ScalingState)

    def push(self, t_ms: int, kind: Kind, iid: str = "", n: int = 0, service_ms: int = 0) -> None:
        heapq.heappush(self.events, (t_ms, next(self.seq), kind, iid, n, service_ms))

    def run(self, trace: Trace, max_steps: int = 10_000) -> SimResult:
        self.push(0, "check")  # boot: min_instances start before any request
        for t_ms, arrivals, service_ms in trace:
            self.push(t_ms, "arrive", n=arrivals, service_ms=service_ms)
        curve: Curve = []
        cold_starts = completed = 0
        for _ in range(max_steps):
            if not self.events:
                break
            t = self.events[0][0]
            while self.events and self.events[0][0] == t:
                _, _, kind, iid, n, service_ms = heapq.heappop(self.events)
                if kind == "arrive":
                    self.queue.extend([service_ms] * n)
                elif kind == "done":
                    inst = self.ready[iid]
                    inst.in_flight -= 1
                    inst.idle_since_ms = t if inst.in_flight == 0 else None
                    completed += 1
                elif kind == "ready":
                    self.starting.remove(iid)
                    self.ready[iid] = _Instance(started_ms=t, idle_since_ms=t)
                else:
                    self.checks.discard(t)
            self.dispatch(t)
            cold_starts += self.ask_and_apply(t)
            live = len(self.ready) + len(self.starting)
            if live != (curve[-1][1] if curve else 0):
                curve.append((t, live))
        else:
            pytest.fail(f"the simulation did not settle within {max_steps} steps")
        assert not self.queue, "every invocation ran"
        return SimResult(curve=curve, cold_starts=cold_starts, completed=completed)

    def dispatch(self, t: int) -> None:
        """Pack queued invocations: busiest instance with a free slot, then most recently idle."""
        while self.queue:
            free = [
                (-inst.in_flight, -(inst.idle_since_ms or 0), iid)
                for iid, inst in self.ready.items()
                if inst.in_flight < self.spec.concurrency
            ]
            if not free:
                return
            iid = min(free)[2]
            inst = self.ready[iid]
            inst.in_flight += 1
            inst.idle_since_ms = None
            self.push(t + self.queue.popleft(), "done", iid)

    def ask_and_apply(self, t: int) -> int:
        snap = PoolSnapshot(
            now_s=(BASE_MS + t) / 1000,
            starting=len(self.starting),
            queued=len(self.queue),
            instances={
                iid: InstanceView(
                    in_flight=inst.in_flight,
                    idle_since_s=None
                    if inst.idle_since_ms is None
                    else (BASE_MS + inst.idle_since_ms) / 1000,
                    started_s=(BASE_MS + inst.started_ms) / 1000,
                )
                for iid, inst in self.ready.items()
            },
        )
        decision, self.state = decide(snap, self.spec, self.state)
        assert bool(decision.reason) == bool(decision.start or decision.stop)
        for _ in range(decision.start):
            iid = f"i{next(self.seq)}"
            self.starting.add(iid)
            self.push(t + self.cold_start_ms, "ready", iid)
        for iid in decision.stop:
            assert self.ready[iid].in_flight == 0, "only idle instances are stopped"
            del self.ready[iid]
        if decision.next_check_s is not None:
            wake = round(decision.next_check_s * 1000) - BASE_MS
            assert wake > t, "the next check lies in the future"
            if wake not in self.checks:
                self.checks.add(wake)
                self.push(wake, "check")
        live = len(self.ready) + len(self.starting)
        assert live <= self.spec.max_instances, f"{live} instances at {t} ms exceed the cap"
        assert live >= self.spec.min_instances, f"{live} instances at {t} ms are below the floor"
        assert all(i.in_flight <= self.spec.concurrency for i in self.ready.values())
        return decision.start


def spec(
    min_instances: int = 0,
    max_instances: int = 10,
    concurrency: int = 1,
    keep_alive_ms: int = 1000,
) -> ScalingSpec:
    return ScalingSpec(min_instances, max_instances, concurrency, keep_alive_ms / 1000)


@pytest.mark.parametrize(
    ("spec_", "trace", "curve", "cold_starts"),
    [
        pytest.param(
            spec(max_instances=3),
            [(0, 5, 500)],
            [(0, 3), (1600, 2), (2100, 0)],
            3,
            id="a burst of five scales out to max 3, then to zero a keep-alive after each idles",
        ),
        pytest.param(
            spec(keep_alive_ms=500),
            [(0, 1, 1000), (50, 1, 1000), (200, 1, 1000)],
            [(0, 1), (50, 2), (200, 3), (1600, 2), (1650, 1), (1800, 0)],
            3,
            id="each request that finds no free slot causes one cold start",
        ),
        pytest.param(
            spec(),
            [(0, 1, 200)],
            [(0, 1), (1300, 0)],
            1,
            id="a single request scales to zero after keep-alive of idle",
        ),
        pytest.param(
            spec(keep_alive_ms=2000),
            [(0, 1, 100), (1000, 1, 100)],
            [(0, 1), (3100, 0)],
            1,
            id="a request within the keep-alive reuses the warm instance and renews its keep-alive",
        ),
        pytest.param(
            spec(keep_alive_ms=0),
            [(0, 1, 100), (500, 1, 100)],
            [(0, 1), (200, 0), (500, 1), (700, 0)],
            2,
            id="keep-alive 0 stops each instance as soon as it idles",
        ),
        pytest.param(
            spec(min_instances=2, max_instances=5),
            [(1000, 4, 500), (10_000, 1, 100)],
            [(0, 2), (1000, 4), (2500, 2)],
            4,
            id="min_instances start at boot and stay warm through idle periods",
        ),
        pytest.param(
            spec(concurrency=4),
            [(0, 4, 500)],
            [(0, 1), (1600, 0)],
            1,
            id="four concurrent requests pack onto one instance at concurrency 4",
        ),
        pytest.param(
            spec(concurrency=4),
            [(0, 6, 500)],
            [(0, 2), (1600, 0)],
            2,
            id="six concurrent requests at concurrency 4 need two instances",
        ),
        pytest.param(
            spec(concurrency=4),
            [(0, 1, 1000), (200, 3, 1000)],
            [(0, 1), (2200, 0)],
            1,
            id="requests arriving at a running instance use its free slots at concurrency 4",
        ),
        pytest.param(
            spec(keep_alive_ms=300),
            [(0, 1, 100), (150, 1, 100)],
            [(0, 1), (150, 2), (550, 1), (600, 0)],
            2,
            id="a request queued behind a busy instance starts one but takes the first one free",
        ),
    ],
)
def test_trace(spec_: ScalingSpec, trace: Trace, curve: Curve, cold_starts: int) -> None:
    result = PoolSim(spec_, cold_start_ms=100).run(trace)
    assert result.curve == curve
    assert result.cold_starts == cold_starts
    assert result.completed == sum(n for _, n, _ in trace)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_long_random_trace_never_exceeds_max_and_ends_at_min(seed: int, concurrency: int) -> None:
    rng = random.Random(seed)
    trace: Trace = []
    t = 0
    for _ in range(150):
        t += rng.choice([0, 10, 50, 200, 1500])
        trace.append((t, rng.randint(0, 6), rng.randint(50, 800)))
    sim = PoolSim(spec(min_instances=1, max_instances=4, concurrency=concurrency), 120)
    result = sim.run(trace)  # the cap and the floor are asserted after every decision
    assert max(live for _, live in result.curve) == 4, "the burst reached the cap"
    assert result.curve[-1][1] == 1, "idle, the pool settles at min_instances"
    assert result.completed == sum(n for _, n, _ in trace)
