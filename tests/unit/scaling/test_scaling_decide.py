"""`decide` as a table: one pool snapshot in, one `Decision` out."""

from __future__ import annotations

import pytest

from lamina.scaling import (
    Decision,
    InstanceView,
    PoolSnapshot,
    ScalingSpec,
    ScalingState,
    decide,
)

NOW_S = 100.0


def spec(
    min_instances: int = 0,
    max_instances: int = 10,
    concurrency: int = 1,
    keep_alive_s: float = 30.0,
) -> ScalingSpec:
    return ScalingSpec(min_instances, max_instances, concurrency, keep_alive_s)


def pool(starting: int = 0, queued: int = 0, **instances: InstanceView) -> PoolSnapshot:
    return PoolSnapshot(now_s=NOW_S, starting=starting, queued=queued, instances=instances)


def busy(n: int = 1) -> InstanceView:
    return InstanceView(in_flight=n, idle_since_s=None, started_s=0.0)


def idle(since_s: float) -> InstanceView:
    return InstanceView(in_flight=0, idle_since_s=since_s, started_s=0.0)


def nothing(next_check_s: float | None = None) -> Decision:
    return Decision(start=0, stop=(), reason="", next_check_s=next_check_s)


CASES = [
    # --- scale out ---
    pytest.param(spec(), pool(), nothing(), id="an empty pool with nothing queued does nothing"),
    pytest.param(
        spec(),
        pool(queued=1),
        Decision(1, (), "scale 0 -> 1: 1 queued, 0 busy", None),
        id="a queued request with no instances starts one",
    ),
    pytest.param(
        spec(),
        pool(queued=3, a=busy(), b=busy()),
        Decision(3, (), "scale 2 -> 5: 3 queued, 2 busy", None),
        id="three queued beside two busy instances scale 2 to 5",
    ),
    pytest.param(
        spec(max_instances=3),
        pool(queued=10),
        Decision(3, (), "scale 0 -> 3: 10 queued, 0 busy, capped at max_instances 3", None),
        id="a burst beyond max_instances starts only up to the cap",
    ),
    pytest.param(
        spec(max_instances=2),
        pool(queued=5, a=busy(), b=busy()),
        nothing(),
        id="at max_instances more queued work starts nothing",
    ),
    pytest.param(
        spec(max_instances=3),
        pool(starting=2, queued=4, a=busy()),
        nothing(),
        id="instances still starting count toward max_instances",
    ),
    pytest.param(
        spec(),
        pool(starting=2, queued=2),
        nothing(),
        id="instances already starting count as capacity for the queue",
    ),
    pytest.param(
        spec(),
        pool(starting=1, queued=3),
        Decision(2, (), "scale 1 -> 3: 3 queued, 0 busy", None),
        id="queued work beyond the instances starting starts the difference",
    ),
    pytest.param(
        spec(concurrency=4),
        pool(queued=2, a=busy(1)),
        nothing(),
        id="free slots on a ready instance absorb queued work at concurrency 4",
    ),
    pytest.param(
        spec(concurrency=4),
        pool(queued=5, a=busy(4)),
        Decision(2, (), "scale 1 -> 3: 5 queued, 1 busy", None),
        id="five queued beside a full instance at concurrency 4 start two more",
    ),
    pytest.param(
        spec(concurrency=4),
        pool(queued=1),
        Decision(1, (), "scale 0 -> 1: 1 queued, 0 busy", None),
        id="one queued request at concurrency 4 starts one instance",
    ),
    # --- min_instances ---
    pytest.param(
        spec(min_instances=2),
        pool(),
        Decision(2, (), "scale 0 -> 2: min_instances 2", None),
        id="boot with min_instances 2 starts two before any request",
    ),
    pytest.param(
        spec(min_instances=2),
        pool(starting=1),
        Decision(1, (), "scale 1 -> 2: min_instances 2", None),
        id="a pool below min_instances tops itself up",
    ),
    pytest.param(
        spec(min_instances=2),
        pool(a=busy()),
        Decision(1, (), "scale 1 -> 2: min_instances 2", None),
        id="demand below min_instances is explained by the minimum",
    ),
    pytest.param(
        spec(min_instances=2),
        pool(queued=1, a=busy()),
        Decision(1, (), "scale 1 -> 2: 1 queued, 1 busy", None),
        id="demand that reaches min_instances is explained by the demand",
    ),
    pytest.param(
        spec(min_instances=1),
        pool(a=idle(10.0)),
        nothing(),
        id="min_instances keeps an expired idle instance warm with no next check",
    ),
    # --- keep-alive ---
    pytest.param(
        spec(),
        pool(a=idle(90.0)),
        nothing(next_check_s=120.0),
        id="an idle instance within its keep-alive is kept until its expiry",
    ),
    pytest.param(
        spec(),
        pool(a=idle(70.0)),
        Decision(0, ("a",), "scale 1 -> 0: 1 idle for keep_alive_s 30", None),
        id="an instance idle for its whole keep-alive is stopped",
    ),
    pytest.param(
        spec(keep_alive_s=0),
        pool(a=idle(NOW_S)),
        Decision(0, ("a",), "scale 1 -> 0: 1 idle for keep_alive_s 0", None),
        id="keep_alive 0 stops an instance as soon as it is idle",
    ),
    pytest.param(
        spec(min_instances=1),
        pool(a=idle(5.0), b=idle(1.0), c=idle(3.0)),
        Decision(0, ("b", "c"), "scale 3 -> 1: 2 idle for keep_alive_s 30", None),
        id="stops go oldest-idle first down to min_instances",
    ),
    pytest.param(
        spec(min_instances=1),
        pool(starting=1, a=idle(10.0)),
        Decision(0, ("a",), "scale 2 -> 1: 1 idle for keep_alive_s 30", None),
        id="an instance still starting counts toward the min_instances floor",
    ),
    pytest.param(
        spec(),
        pool(queued=1, a=busy(), b=idle(10.0)),
        nothing(),
        id="nothing is stopped while invocations are queued",
    ),
    pytest.param(
        spec(),
        pool(a=busy(), b=idle(10.0)),
        Decision(0, ("b",), "scale 2 -> 1: 1 idle for keep_alive_s 30", None),
        id="an expired idle instance stops while a busy one keeps running",
    ),
    pytest.param(
        spec(),
        pool(a=idle(95.0), b=idle(80.0)),
        nothing(next_check_s=110.0),
        id="the next check is the earliest keep-alive expiry",
    ),
    pytest.param(
        spec(min_instances=2),
        pool(a=idle(95.0), b=idle(80.0)),
        nothing(),
        id="no next check when every idle instance is needed for min_instances",
    ),
    pytest.param(
        spec(min_instances=1),
        pool(a=idle(10.0), b=idle(85.0), c=idle(88.0)),
        Decision(0, ("a",), "scale 3 -> 2: 1 idle for keep_alive_s 30", 115.0),
        id="after a stop the next check is the next expiry still above the floor",
    ),
    pytest.param(
        spec(min_instances=2),
        pool(a=idle(10.0), b=idle(85.0), c=idle(88.0)),
        Decision(0, ("a",), "scale 3 -> 2: 1 idle for keep_alive_s 30", None),
        id="after a stop down to the floor there is no next check",
    ),
]


@pytest.mark.parametrize(("spec_", "snap", "expected"), CASES)
def test_decide(spec_: ScalingSpec, snap: PoolSnapshot, expected: Decision) -> None:
    decision, _ = decide(snap, spec_, ScalingState())
    assert decision == expected


def test_the_reactive_policy_hands_back_the_state_it_was_given() -> None:
    state = ScalingState()
    _, next_state = decide(pool(queued=1), spec(), state)
    assert next_state == ScalingState()


def test_the_answer_does_not_depend_on_the_order_instances_are_listed() -> None:
    views = {"a": idle(5.0), "b": idle(1.0), "c": idle(3.0), "d": busy()}
    forward = PoolSnapshot(now_s=NOW_S, starting=0, queued=0, instances=views)
    backward = PoolSnapshot(
        now_s=NOW_S, starting=0, queued=0, instances=dict(reversed(views.items()))
    )
    assert decide(forward, spec(), ScalingState()) == decide(backward, spec(), ScalingState())
