"""The small pure helpers `decide` is built from, and `ScalingSpec` validation."""

from __future__ import annotations

import math

import pytest

from lamina.scaling import InstanceView, ScalingSpec
from lamina.scaling.policy import (
    clamp,
    expired_idle,
    floor_at_min,
    instances_for_demand,
    next_expiry,
)


def busy(n: int = 1) -> InstanceView:
    return InstanceView(in_flight=n, idle_since_s=None, started_s=0.0)


def idle(since_s: float) -> InstanceView:
    return InstanceView(in_flight=0, idle_since_s=since_s, started_s=0.0)


# --- ScalingSpec --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"max_instances": 0},
            r"ScalingSpec\.max_instances: expected >= 1, got 0",
            id="max_instances 0 is rejected",
        ),
        pytest.param(
            {"min_instances": -1},
            r"ScalingSpec\.min_instances: expected 0-10 \(0\.\.max_instances\), got -1",
            id="a negative min_instances is rejected",
        ),
        pytest.param(
            {"min_instances": 11},
            r"ScalingSpec\.min_instances: expected 0-10 \(0\.\.max_instances\), got 11",
            id="min_instances above max_instances is rejected",
        ),
        pytest.param(
            {"concurrency": 0},
            r"ScalingSpec\.concurrency: expected >= 1, got 0",
            id="concurrency 0 is rejected",
        ),
        pytest.param(
            {"concurrency": 2.0},
            r"ScalingSpec\.concurrency: expected an integer, got 2\.0",
            id="a float concurrency is rejected",
        ),
        pytest.param(
            {"max_instances": True},
            r"ScalingSpec\.max_instances: expected an integer, got True",
            id="a bool max_instances is rejected",
        ),
        pytest.param(
            {"keep_alive_s": -0.5},
            r"ScalingSpec\.keep_alive_s: expected a finite number of seconds >= 0, got -0\.5",
            id="a negative keep_alive_s is rejected",
        ),
        pytest.param(
            {"keep_alive_s": math.nan},
            r"ScalingSpec\.keep_alive_s: expected a finite number of seconds >= 0, got nan",
            id="a NaN keep_alive_s is rejected",
        ),
        pytest.param(
            {"keep_alive_s": math.inf},
            r"ScalingSpec\.keep_alive_s: expected a finite number of seconds >= 0, got inf",
            id="an infinite keep_alive_s is rejected",
        ),
    ],
)
def test_an_invalid_spec_names_the_field_and_the_allowed_range(
    kwargs: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {
        "min_instances": 0,
        "max_instances": 10,
        "concurrency": 1,
        "keep_alive_s": 30.0,
    }
    with pytest.raises(ValueError, match=message):
        ScalingSpec(**(fields | kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec_args",
    [
        pytest.param((0, 1, 1, 0.0), id="the smallest spec scales to zero and stops at once"),
        pytest.param((5, 5, 1, 0), id="min equal to max with an integer keep-alive is valid"),
        pytest.param((2, 10, 100, 600.0), id="a warm pool of async instances is valid"),
    ],
)
def test_a_spec_on_the_bounds_is_accepted(spec_args: tuple[int, int, int, float]) -> None:
    min_instances, max_instances, concurrency, keep_alive_s = spec_args
    spec = ScalingSpec(min_instances, max_instances, concurrency, keep_alive_s)
    assert (spec.min_instances, spec.max_instances) == (min_instances, max_instances)


# --- clamp and instances_for_demand --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "low", "high", "expected"),
    [
        pytest.param(5, 0, 10, 5, id="a value inside the bounds is kept"),
        pytest.param(-1, 0, 10, 0, id="a value below the low bound is raised to it"),
        pytest.param(12, 0, 10, 10, id="a value above the high bound is cut to it"),
        pytest.param(0, 2, 10, 2, id="zero demand with a minimum of two gives two"),
        pytest.param(5, 3, 1, 3, id="the low bound wins when the bounds cross"),
    ],
)
def test_clamp(value: int, low: int, high: int, expected: int) -> None:
    assert clamp(value, low, high) == expected


@pytest.mark.parametrize(
    ("demand", "concurrency", "expected"),
    [
        pytest.param(0, 1, 0, id="no demand needs no instance"),
        pytest.param(1, 1, 1, id="one invocation needs one instance"),
        pytest.param(3, 1, 3, id="three invocations at concurrency 1 need three instances"),
        pytest.param(4, 4, 1, id="four invocations fill one instance at concurrency 4"),
        pytest.param(5, 4, 2, id="a fifth invocation at concurrency 4 needs a second instance"),
        pytest.param(-2, 1, 0, id="negative demand is treated as none"),
    ],
)
def test_instances_for_demand(demand: int, concurrency: int, expected: int) -> None:
    assert instances_for_demand(demand, concurrency) == expected


# --- expired_idle --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instances", "now_s", "keep_alive_s", "expected"),
    [
        pytest.param({}, 100.0, 30.0, (), id="an empty pool has nothing expired"),
        pytest.param({"a": busy()}, 100.0, 30.0, (), id="a busy instance never expires"),
        pytest.param({"a": idle(80.0)}, 100.0, 30.0, (), id="an instance idle 20s of 30 is kept"),
        pytest.param(
            {"a": idle(70.0)}, 100.0, 30.0, ("a",), id="an instance idle exactly 30s of 30 expires"
        ),
        pytest.param(
            {"a": idle(100.0)}, 100.0, 0.0, ("a",), id="keep-alive 0 expires the moment it idles"
        ),
        pytest.param(
            {"c": idle(3.0), "a": idle(5.0), "b": idle(1.0), "d": busy()},
            100.0,
            30.0,
            ("b", "c", "a"),
            id="expired instances come oldest-idle first",
        ),
        pytest.param(
            {"b": idle(1.0), "a": idle(1.0)},
            100.0,
            30.0,
            ("a", "b"),
            id="instances idle since the same moment are ordered by id",
        ),
        pytest.param(
            {"a": InstanceView(in_flight=0, idle_since_s=None, started_s=60.0)},
            100.0,
            30.0,
            ("a",),
            id="an idle instance without idle_since counts as idle since it started",
        ),
    ],
)
def test_expired_idle(
    instances: dict[str, InstanceView], now_s: float, keep_alive_s: float, expected: tuple[str, ...]
) -> None:
    assert expired_idle(instances, now_s, keep_alive_s) == expected


def test_an_expiry_reached_on_a_millisecond_clock_counts_despite_float_rounding() -> None:
    # 0.1 + 0.2 == 0.30000000000000004 > 0.3, yet a clock at 300 ms must see the expiry.
    instances = {"a": idle(100 / 1000)}
    assert expired_idle(instances, 300 / 1000, 200 / 1000) == ("a",)
    assert expired_idle(instances, 299 / 1000, 200 / 1000) == ()
    assert next_expiry(instances, 300 / 1000, 200 / 1000, room=1) is None


# --- floor_at_min --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidates", "live", "min_instances", "expected"),
    [
        pytest.param(("a", "b"), 2, 0, ("a", "b"), id="with no minimum every candidate stops"),
        pytest.param(("a", "b", "c"), 3, 1, ("a", "b"), id="the last instance above one is kept"),
        pytest.param(("a", "b"), 2, 2, (), id="at the minimum nothing stops"),
        pytest.param(("a",), 1, 3, (), id="below the minimum nothing stops"),
        pytest.param(
            ("a",), 3, 1, ("a",), id="busy and starting instances count toward the minimum"
        ),
    ],
)
def test_floor_at_min(
    candidates: tuple[str, ...], live: int, min_instances: int, expected: tuple[str, ...]
) -> None:
    assert floor_at_min(candidates, live, min_instances) == expected


# --- next_expiry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instances", "room", "expected"),
    [
        pytest.param({}, 1, None, id="an empty pool has no next expiry"),
        pytest.param({"a": busy()}, 1, None, id="a busy instance has no expiry"),
        pytest.param({"a": idle(90.0)}, 1, 120.0, id="an idle instance expires keep-alive later"),
        pytest.param(
            {"a": idle(95.0), "b": idle(90.0)}, 2, 120.0, id="the earliest expiry is the answer"
        ),
        pytest.param({"a": idle(90.0)}, 0, None, id="with no room above the minimum, none"),
        pytest.param(
            {"a": idle(50.0), "b": idle(85.0)},
            1,
            115.0,
            id="an expiry already past is skipped for the next future one",
        ),
    ],
)
def test_next_expiry(instances: dict[str, InstanceView], room: int, expected: float | None) -> None:
    assert next_expiry(instances, 100.0, 30.0, room) == expected
