"""Seeded synthetic traces shaped like the Azure Functions 2019 workload.

The shapes come from Shahrad et al., "Serverless in the Wild" (USENIX ATC 2020), section 3:

- Rate: each function's mean rate r (invocations per hour) is `10 ** Normal(0.2227, 1.7717)`,
  chosen so that P(r <= 1/h) = 0.45 and P(r <= 60/h) = 0.81, the paper's "45% of apps are
  invoked once per hour or less, 81% once per minute or less". Rates are capped at
  `max_rate_per_hour` (default 240) to bound the trace size; a capped function is still
  invoked more than once a minute, so the two fractions are unchanged.
- Duration: each function's mean execution time is LogNormal(mu=-0.38, sigma=2.36) seconds,
  the paper's fit of average execution times (Figure 7), capped at 900 s; each invocation
  varies around it by a factor LogNormal(0, 0.3).
- Memory: each function's memory is Burr XII(c=11.652, k=0.221, lambda=107.083) MB, the
  paper's fit of allocated memory (Figure 8), clamped to 1..10240 MB.
- Arrival pattern (our assumption; the paper only reports that timers are 16% of functions
  and that inter-arrival regularity varies widely): 16% timers (a fixed period of 1/r, rounded
  to the second, with +-1 s jitter), 34% regular (inter-arrival 1/r x LogNormal(0, 0.25))
  and 50% Poisson (exponential inter-arrival, mean 1/r). Every function starts at a random
  offset within its first inter-arrival time.

Pure: takes a `random.Random`; the same seed gives the same trace.
"""

from __future__ import annotations

import random

from lamina.scaling.simulate import Invocation

__all__ = ["RATE_LOG10_MEAN", "RATE_LOG10_SD", "burr_memory_mb", "generate", "rate_per_hour"]

RATE_LOG10_MEAN = 0.2227  # log10(invocations per hour): Normal mean
RATE_LOG10_SD = 1.7717  # and standard deviation, fitted to the 45% / 81% fractions above
DURATION_LOG_MU = -0.38  # ln(seconds)
DURATION_LOG_SIGMA = 2.36
BURR_C, BURR_K, BURR_LAMBDA = 11.652, 0.221, 107.083  # MB
TIMER_SHARE, REGULAR_SHARE = 0.16, 0.34  # the rest is Poisson


def burr_memory_mb(u: float) -> float:
    """Burr XII quantile at `u` in [0, 1): lambda * ((1 - u) ** (-1/k) - 1) ** (1/c)."""
    base: float = (1 - u) ** (-1 / BURR_K) - 1
    return float(BURR_LAMBDA * base ** (1 / BURR_C))


def _arrivals(rng: random.Random, rate_per_s: float, horizon_s: float) -> list[float]:
    mean_gap = 1 / rate_per_s
    kind = rng.random()
    if kind < TIMER_SHARE:
        period = max(1.0, round(mean_gap))

        def gap() -> float:
            return max(0.0, period + rng.uniform(-1.0, 1.0))

        t = rng.uniform(0, period)
    elif kind < TIMER_SHARE + REGULAR_SHARE:

        def gap() -> float:
            return mean_gap * rng.lognormvariate(0.0, 0.25)

        t = rng.uniform(0, mean_gap)
    else:

        def gap() -> float:
            return rng.expovariate(rate_per_s)

        t = rng.expovariate(rate_per_s)
    times = []
    while t < horizon_s:
        times.append(t)
        t += gap()
    return times


def generate(
    functions: int, hours: float, rng: random.Random, max_rate_per_hour: float = 240.0
) -> list[Invocation]:
    """A trace of `functions` functions over `hours`, sorted by start time.

    A function whose rate gives no invocation within the horizon does not appear.
    """
    if functions < 1:
        raise ValueError(f"functions: expected >= 1, got {functions}")
    if not hours > 0:
        raise ValueError(f"hours: expected > 0, got {hours}")
    horizon_s = hours * 3600
    rows: list[Invocation] = []
    width = len(str(functions - 1))
    for index in range(functions):
        fid = f"f{index:0{width}d}"
        per_hour = min(10 ** rng.gauss(RATE_LOG10_MEAN, RATE_LOG10_SD), max_rate_per_hour)
        mean_duration = min(900.0, rng.lognormvariate(DURATION_LOG_MU, DURATION_LOG_SIGMA))
        memory = min(10240.0, max(1.0, round(burr_memory_mb(rng.random()))))
        for start in _arrivals(rng, per_hour / 3600, horizon_s):
            duration = min(900.0, mean_duration * rng.lognormvariate(0.0, 0.3))
            rows.append(Invocation(fid, round(start, 3), round(duration, 3), memory))
    rows.sort(key=lambda r: (r.start_s, r.function))
    return rows


def rate_per_hour(invocations: list[Invocation], hours: float) -> dict[str, float]:
    """Each function's observed mean rate, invocations per hour, over `hours`."""
    counts: dict[str, int] = {}
    for inv in invocations:
        counts[inv.function] = counts.get(inv.function, 0) + 1
    return {fid: n / hours for fid, n in counts.items()}
