"""The pricing math of `lamina cost` against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from lamina.store.types import FunctionUsage
from lamina.telemetry.cost import Prices, cost_report

HOUR_MS = 3_600_000
T0 = 1_700_000_000_000


def test_the_worked_example_of_the_module_docstring() -> None:
    # A 256 MB function, 1,000 invocations billed 200 ms each, at most 4 at once, for 1 hour.
    usage = [FunctionUsage("shop.checkout", 1000, 1000 * 200 * 256, 256, 4)]

    report = cost_report(usage, since_ms=T0, until_ms=T0 + HOUR_MS, by="function")

    [row] = report.rows
    assert row.name == "shop.checkout"
    assert row.requests == 1000
    assert row.gb_seconds == 50.0  # 51,200,000 MB-ms / 1024 / 1000
    assert row.request_cost == pytest.approx(0.0002)  # 1000 x $0.20 / 1e6
    assert row.compute_cost == pytest.approx(0.000833335)  # 50 x $0.0000166667
    assert row.cost == pytest.approx(0.001033335)
    assert row.peak_concurrency == 4
    assert row.always_on_gb_seconds == 3600.0  # 4 x 0.25 GB x 3600 s
    assert row.always_on_cost == pytest.approx(0.06000012)  # 3600 x $0.0000166667
    assert row.saving == pytest.approx(0.058966785)
    assert report.window_s == 3600.0


def test_a_service_sums_its_functions_and_its_always_on_instances_are_their_peaks() -> None:
    # users.signup: 128 MB, 10 requests, 10 x 100 ms billed, peak 2.
    # users.login: 512 MB, 30 requests, 30 x 20 ms billed, peak 3.
    # orders.pay: 1024 MB, 1 request, 1 x 1000 ms billed, peak 1.
    usage = [
        FunctionUsage("orders.pay", 1, 1000 * 1024, 1024, 1),
        FunctionUsage("users.login", 30, 30 * 20 * 512, 512, 3),
        FunctionUsage("users.signup", 10, 10 * 100 * 128, 128, 2),
    ]
    prices = Prices(gb_second=0.00001, request_per_million=1.0)  # round numbers by hand

    report = cost_report(usage, since_ms=T0, until_ms=T0 + 10_000, by="service", prices=prices)

    users, orders = report.rows  # highest cost first
    assert users.name == "users"
    assert users.requests == 40
    # (128,000 + 307,200) MB-ms = 435,200 MB-ms = 0.425 GB-s
    assert users.gb_seconds == pytest.approx(0.425)
    assert users.compute_cost == pytest.approx(0.00000425)
    assert users.request_cost == pytest.approx(0.00004)  # 40 x $1 / 1e6
    assert users.cost == pytest.approx(0.00004425)
    # always on for 10 s: 2 x 0.125 GB + 3 x 0.5 GB = 1.75 GB x 10 s = 17.5 GB-s
    assert users.peak_concurrency == 5
    assert users.always_on_gb_seconds == pytest.approx(17.5)
    assert users.always_on_cost == pytest.approx(0.000175)
    assert users.saving == pytest.approx(0.000175 - 0.00004425)
    assert orders.name == "orders"
    assert orders.gb_seconds == pytest.approx(1.0)
    assert orders.cost == pytest.approx(0.00001 + 0.000001)
    assert orders.always_on_gb_seconds == pytest.approx(10.0)  # 1 x 1 GB x 10 s
    total = report.total
    assert total.requests == 41
    assert total.gb_seconds == pytest.approx(1.425)
    assert total.cost == pytest.approx(users.cost + orders.cost)
    assert total.always_on_gb_seconds == pytest.approx(27.5)
    assert total.saving == pytest.approx(users.saving + orders.saving)


def test_by_function_keeps_one_row_per_function() -> None:
    usage = [
        FunctionUsage("users.login", 30, 30 * 20 * 512, 512, 3),
        FunctionUsage("users.signup", 10, 10 * 100 * 128, 128, 2),
    ]

    report = cost_report(usage, since_ms=T0, until_ms=T0 + 1000, by="function")

    assert [row.name for row in report.rows] == ["users.login", "users.signup"]
    assert [row.peak_concurrency for row in report.rows] == [3, 2]


def test_a_busy_function_can_cost_more_per_use_than_always_on() -> None:
    # 128 MB, 1 instance busy the whole 1 s window (1000 ms billed), plus a million requests
    # at $0.20: pay-per-use costs the request charge more than the always-on instance.
    usage = [FunctionUsage("svc.hot", 1_000_000, 1000 * 128, 128, 1)]

    report = cost_report(usage, since_ms=T0, until_ms=T0 + 1000)

    [row] = report.rows
    assert row.compute_cost == pytest.approx(row.always_on_cost)
    assert row.saving == pytest.approx(-0.20)


def test_no_usage_is_an_empty_report_with_zero_totals() -> None:
    report = cost_report([], since_ms=T0, until_ms=T0 + HOUR_MS)

    assert report.rows == ()
    assert report.total.cost == 0 and report.total.always_on_cost == 0
    assert report.total.saving == 0 and report.total.requests == 0


def test_the_json_view_has_the_agreed_shape() -> None:
    usage = [FunctionUsage("svc.fn", 2, 2 * 10 * 128, 128, 1)]

    view = cost_report(usage, since_ms=T0, until_ms=T0 + 1500, by="function").to_json()

    keys = [
        "requests",
        "gb_seconds",
        "request_cost",
        "compute_cost",
        "cost",
        "always_on_gb_seconds",
        "always_on_cost",
        "saving",
    ]
    assert list(view) == ["since_ms", "until_ms", "window_s", "by", "prices", "rows", "total"]
    assert view["window_s"] == 1.5 and view["by"] == "function"
    assert view["prices"] == {"gb_second": 0.0000166667, "request_per_million": 0.20}
    assert sorted(view["rows"][0]) == sorted(["name", "peak_concurrency", *keys])
    assert sorted(view["total"]) == sorted(keys)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"gb_second": -1.0}, "gb_second: expected a price >= 0", id="negative"),
        pytest.param(
            {"request_per_million": math.nan}, "request_per_million: expected", id="not a number"
        ),
        pytest.param({"gb_second": math.inf}, "gb_second: expected", id="infinite"),
    ],
)
def test_a_price_that_is_not_a_finite_amount_is_refused(
    changes: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Prices(**changes)


def test_an_empty_window_or_an_unknown_grouping_is_refused() -> None:
    with pytest.raises(ValueError, match="since: expected a time before the end"):
        cost_report([], since_ms=T0, until_ms=T0)
    with pytest.raises(ValueError, match="by: expected service or function, got 'team'"):
        cost_report([], since_ms=T0, until_ms=T0 + 1, by="team")  # type: ignore[arg-type]
