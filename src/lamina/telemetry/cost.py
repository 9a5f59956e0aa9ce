"""Metering and cost: what a window's invocations cost at pay-per-use prices, and what the same
workload would cost on always-on instances. Pure: usage rows and a window in, a report out; the
store aggregates the records (`TelemetryStore.usage`), the admin API and the CLI show the report.

Formulas, per function, then summed per service and in total (integers are summed first, so a
total is exactly the sum of its rows up to one float rounding):

    gb_seconds           = sum(billed_ms x memory_mb) / 1024 / 1000
    request_cost         = requests x request_per_million / 1e6
    compute_cost         = gb_seconds x gb_second
    cost                 = request_cost + compute_cost
    always_on_gb_seconds = peak_concurrency x memory_mb / 1024 x window_s
    always_on_cost       = always_on_gb_seconds x gb_second
    saving               = always_on_cost - cost

Always-on means what Lamina would run with `min_instances` set to each function's observed
peak concurrency for the whole window: one instance per function per concurrent invocation
(an instance runs one function's code), each at the function's memory, priced at the same
GB-second rate (compute-equivalent) and with no request charge. A service's always-on
instances are therefore the sum of its functions' peaks (its row's `peak_concurrency`), not the
peak of the service as a whole: functions do not share instances. Throttled invocations are not
billed (AWS does not bill them either) and the free tier is not deducted.

Worked example (tests/unit/telemetry/test_telemetry_cost.py): a 256 MB function invoked 1,000
times for 200 ms each (billed 200 ms), at most 4 at once, in a 1-hour window:
gb_seconds = 1000 x 200 x 256 / 1024 / 1000 = 50; compute_cost = 50 x 0.0000166667 =
$0.000833335; request_cost = 1000 x 0.20 / 1e6 = $0.0002; cost = $0.001033335;
always_on_gb_seconds = 4 x 0.25 x 3600 = 3600; always_on_cost = $0.06000012;
saving = $0.058966785.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from lamina.store.types import FunctionUsage

__all__ = [
    "BY_VALUES",
    "DEFAULT_PRICES",
    "By",
    "CostLine",
    "CostReport",
    "Prices",
    "cost_report",
    "service_of",
]

By = Literal["service", "function"]
BY_VALUES: tuple[By, ...] = ("service", "function")
_MB_MS_PER_GB_S = 1024 * 1000


@dataclass(frozen=True, slots=True)
class Prices:
    """Pay-per-use prices in USD; the defaults are AWS Lambda's x86 list prices."""

    gb_second: float = 0.0000166667  # per GB-second of billed duration, >= 0
    request_per_million: float = 0.20  # per million requests, >= 0

    def __post_init__(self) -> None:
        for name in ("gb_second", "request_per_million"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a price >= 0 in USD, got {value!r}")


DEFAULT_PRICES = Prices()


@dataclass(frozen=True, slots=True)
class CostLine:
    """One row of the report (a service, a function, or the total), amounts in USD."""

    name: str
    requests: int
    gb_seconds: float
    request_cost: float
    compute_cost: float
    cost: float
    peak_concurrency: int  # always-on instances: the sum of the functions' peaks
    always_on_gb_seconds: float
    always_on_cost: float
    saving: float  # always_on_cost - cost: what paying per use saves (negative: it costs more)

    def to_json(self, *, with_name: bool = True) -> dict[str, Any]:
        view = {
            "name": self.name,
            "requests": self.requests,
            "gb_seconds": self.gb_seconds,
            "request_cost": self.request_cost,
            "compute_cost": self.compute_cost,
            "cost": self.cost,
            "peak_concurrency": self.peak_concurrency,
            "always_on_gb_seconds": self.always_on_gb_seconds,
            "always_on_cost": self.always_on_cost,
            "saving": self.saving,
        }
        if not with_name:
            del view["name"], view["peak_concurrency"]
        return view


@dataclass(frozen=True, slots=True)
class CostReport:
    since_ms: int  # the window, epoch ms: invocations that started in [since_ms, until_ms)
    until_ms: int
    by: By
    prices: Prices
    rows: tuple[CostLine, ...]  # highest cost first, then by name
    total: CostLine

    @property
    def window_s(self) -> float:
        return (self.until_ms - self.since_ms) / 1000

    def to_json(self) -> dict[str, Any]:
        """The shape `GET /cost` returns (fixed: the dashboard reads it)."""
        return {
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "window_s": self.window_s,
            "by": self.by,
            "prices": {
                "gb_second": self.prices.gb_second,
                "request_per_million": self.prices.request_per_million,
            },
            "rows": [row.to_json() for row in self.rows],
            "total": self.total.to_json(with_name=False),
        }


@dataclass(slots=True)
class _Sums:
    """Integer sums of one group, so that rounding happens once, at the end."""

    requests: int = 0
    billed_mb_ms: int = 0
    peak: int = 0
    always_on_mb_ms: int = 0  # sum of peak x memory_mb x window_ms

    def add(self, usage: FunctionUsage, window_ms: int) -> None:
        self.requests += usage.requests
        self.billed_mb_ms += usage.billed_mb_ms
        self.peak += usage.peak_concurrency
        self.always_on_mb_ms += usage.peak_concurrency * usage.memory_mb * window_ms

    def line(self, name: str, prices: Prices) -> CostLine:
        gb_seconds = self.billed_mb_ms / _MB_MS_PER_GB_S
        always_on_gb_seconds = self.always_on_mb_ms / _MB_MS_PER_GB_S
        request_cost = self.requests * prices.request_per_million / 1_000_000
        compute_cost = gb_seconds * prices.gb_second
        cost = request_cost + compute_cost
        always_on_cost = always_on_gb_seconds * prices.gb_second
        return CostLine(
            name=name,
            requests=self.requests,
            gb_seconds=gb_seconds,
            request_cost=request_cost,
            compute_cost=compute_cost,
            cost=cost,
            peak_concurrency=self.peak,
            always_on_gb_seconds=always_on_gb_seconds,
            always_on_cost=always_on_cost,
            saving=always_on_cost - cost,
        )


def service_of(function_id: str) -> str:
    """`users` for `users.signup`."""
    return function_id.partition(".")[0]


def cost_report(
    usage: Iterable[FunctionUsage],
    *,
    since_ms: int,
    until_ms: int,
    by: By = "service",
    prices: Prices = DEFAULT_PRICES,
) -> CostReport:
    """The cost of each service (or function) and in total over [since_ms, until_ms); the
    always-on side keeps each function's peak for the whole window. Raises ValueError for an
    empty window or an unknown `by`."""
    if by not in BY_VALUES:
        raise ValueError(f"by: expected service or function, got {by!r}")
    window_ms = until_ms - since_ms
    if window_ms <= 0:
        raise ValueError(f"since: expected a time before the end of the window, got {since_ms} ms")
    groups: dict[str, _Sums] = {}
    total = _Sums()
    for u in usage:
        name = service_of(u.function_id) if by == "service" else u.function_id
        groups.setdefault(name, _Sums()).add(u, window_ms)
        total.add(u, window_ms)
    rows = sorted(
        (sums.line(name, prices) for name, sums in groups.items()),
        key=lambda row: (-row.cost, row.name),
    )
    return CostReport(since_ms, until_ms, by, prices, tuple(rows), total.line("total", prices))
