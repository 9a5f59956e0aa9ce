"""The least-memory bound `benchmarks/keepalive.py` prints beside its table."""

from __future__ import annotations

import math

from keepalive import oracle_mix

from lamina.scaling.simulate import FunctionResult, SimulationResult


def _result(policy: str, outcomes: list[tuple[int, float]]) -> SimulationResult:
    """One policy's outcome for functions f0, f1, ...: (cold starts of 4, idle MB·s) each."""
    return SimulationResult(
        policy,
        tuple(FunctionResult(f"f{i}", 4, cold, mb_s) for i, (cold, mb_s) in enumerate(outcomes)),
    )


def test_each_function_takes_the_cheapest_policy_that_reaches_the_target() -> None:
    none = _result("fixed:0m", [(4, 0.0), (4, 0.0), (4, 0.0), (4, 0.0)])
    short = _result("fixed:10m", [(1, 1024.0), (4, 2048.0), (2, 4096.0), (4, 512.0)])
    long = _result("fixed:60m", [(0, 8192.0), (1, 3072.0), (0, 6144.0), (3, 9216.0)])
    # Three of four functions (the 75th percentile) at <= 50% (2 of 4) cold: f0 and f2 under
    # fixed:10m (1 + 4 GB·s) and f1 under fixed:60m (3 GB·s); f3 reaches it under none.
    assert oracle_mix([none, short, long], 75, 50.0) == 1 + 4 + 3
    # The median function: the two cheapest of those three.
    assert oracle_mix([none, short, long], 50, 50.0) == 1 + 3


def test_a_target_too_few_functions_reach_is_infinite() -> None:
    none = _result("fixed:0m", [(4, 0.0), (4, 0.0)])
    short = _result("fixed:10m", [(0, 1024.0), (3, 1024.0)])
    assert oracle_mix([none, short], 75, 50.0) == math.inf
