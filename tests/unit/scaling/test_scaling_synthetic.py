"""The synthetic trace generator: the same seed gives the same trace, and the trace has the
Azure Functions 2019 shapes (the share of functions by invocation rate, Burr memory, LogNormal
durations)."""

from __future__ import annotations

import random
import statistics

import pytest

from lamina.scaling.synthetic import burr_memory_mb, generate, rate_per_hour


def test_the_same_seed_gives_the_same_trace_and_another_seed_another() -> None:
    first = generate(40, 6, random.Random(7))
    assert first == generate(40, 6, random.Random(7))
    assert first != generate(40, 6, random.Random(8))
    assert [r.start_s for r in first] == sorted(r.start_s for r in first)


def test_rates_memory_and_durations_have_the_published_shapes() -> None:
    functions, hours = 600, 12
    trace = generate(functions, hours, random.Random(11), max_rate_per_hour=70)
    rates = rate_per_hour(trace, hours)
    observed = [rates.get(f"f{i:03d}", 0.0) for i in range(functions)]
    hourly_or_less = sum(r <= 1 for r in observed) / functions
    minutely_or_less = sum(r <= 60 for r in observed) / functions
    assert hourly_or_less == pytest.approx(0.45, abs=0.06)
    assert minutely_or_less == pytest.approx(0.81, abs=0.05)
    memory = {r.function: r.memory_mb for r in trace}
    # Burr XII(11.652, 0.221, 107.083): median 107.083 * (2 ** (1 / 0.221) - 1) ** (1 / 11.652)
    assert burr_memory_mb(0.5) == pytest.approx(139.6, abs=0.1)
    assert statistics.median(memory.values()) == pytest.approx(139.6, rel=0.1)
    per_function: dict[str, list[float]] = {}
    for r in trace:
        per_function.setdefault(r.function, []).append(r.duration_s)
    # LogNormal(-0.38, 2.36) seconds: median exp(-0.38) = 0.68 s
    medians = [statistics.median(d) for d in per_function.values()]
    assert 0.45 <= statistics.median(medians) <= 1.0


@pytest.mark.parametrize(
    ("functions", "hours", "message"),
    [(0, 1, "functions: expected >= 1, got 0"), (1, 0, "hours: expected > 0, got 0")],
)
def test_an_empty_trace_is_refused(functions: int, hours: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(functions, hours, random.Random(1))
