"""Which version an invocation runs: targets, qualifiers and canary weights."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, cast

import pytest

from lamina.errors import FunctionNotFound
from lamina.executor import ExecutorBackend, FunctionConfig
from lamina.invoker import Invoker, PoolConfig
from lamina.invoker.aliases import AliasRoute, parse_target, pick_version
from lamina.scaling import ScalingSpec


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("orders.create", ("orders.create", "live")),
        ("orders.create:beta", ("orders.create", "beta")),
        ("orders.create:7", ("orders.create", "7")),
        ("orders.create:$LATEST", ("orders.create", "$LATEST")),
    ],
    ids=["no qualifier means live", "an alias", "a version", "latest"],
)
def test_targets_name_a_function_and_a_qualifier(target: str, expected: tuple[str, str]) -> None:
    assert parse_target(target) == expected


@pytest.mark.parametrize(
    ("route", "draw", "version"),
    [
        (AliasRoute(7), 0.0, 7),
        (AliasRoute(7, 8, 10), 0.0, 8),
        (AliasRoute(7, 8, 10), 0.0999, 8),
        (AliasRoute(7, 8, 10), 0.1, 7),
        (AliasRoute(7, 8, 10), 0.9999, 7),
        (AliasRoute(7, 8, 0), 0.0, 7),
        (AliasRoute(7, 8, 100), 0.9999, 8),
    ],
    ids=[
        "no canary: always the version",
        "the lowest draw goes to the canary",
        "draws below the weight go to the canary",
        "a draw at the weight goes to the version",
        "the highest draw goes to the version",
        "weight 0 never picks the canary",
        "weight 100 always picks the canary",
    ],
)
def test_a_draw_below_the_weight_picks_the_canary(
    route: AliasRoute, draw: float, version: int
) -> None:
    assert pick_version(route, draw) == version


def test_a_ten_percent_canary_gets_about_ten_percent_of_draws() -> None:
    rng = random.Random(3)
    picked = Counter(pick_version(AliasRoute(1, 2, 10), rng.random()) for _ in range(10_000))
    assert 900 <= picked[2] <= 1100


def test_only_a_weighted_canary_counts_as_a_version_in_use() -> None:
    assert AliasRoute(1).versions() == (1,)
    assert AliasRoute(1, 2, 0).versions() == (1,)
    assert AliasRoute(1, 2, 5).versions() == (1, 2)


def _config(fid: str, version: str) -> PoolConfig:
    fn = FunctionConfig(fid, "h.h", "/tmp", 128, 3.0, 1, version=version)
    scaling = ScalingSpec(min_instances=0, max_instances=1, concurrency=1, keep_alive_s=60)
    return PoolConfig(fn, scaling, max_queued=1, queue_timeout_s=1.0)


def _invoker(*pools: tuple[str, str]) -> Invoker:
    # Pools are never started here: resolving a target touches no backend.
    backend = cast(ExecutorBackend, cast(Any, object()))
    return Invoker([_config(f, v) for f, v in pools], backend, rng=random.Random(5))


def test_live_is_latest_until_an_alias_exists() -> None:
    invoker = _invoker(("f.g", "$LATEST"))
    assert invoker.pool("f.g").fn.version == "$LATEST"
    assert invoker.pool("f.g:$LATEST").fn.version == "$LATEST"
    assert invoker.knows("f.g") and not invoker.knows("f.g:beta")
    with pytest.raises(FunctionNotFound, match="has no alias 'beta'"):
        invoker.pool("f.g:beta")


def test_aliases_and_versions_resolve_to_their_pools() -> None:
    invoker = _invoker(("f.g", "1"), ("f.g", "2"), ("f.g", "3"))
    invoker.set_aliases("f.g", {"live": AliasRoute(1, 2, 25), "beta": AliasRoute(3)})
    assert invoker.pool("f.g:beta").fn.version == "3"
    assert invoker.pool("f.g:2").fn.version == "2"
    assert invoker.pool("f.g:02").fn.version == "2"
    picked = Counter(invoker.pool("f.g").fn.version for _ in range(4000))
    assert set(picked) == {"1", "2"} and 850 <= picked["2"] <= 1150
    with pytest.raises(FunctionNotFound, match="no alias points at this version"):
        invoker.pool("f.g:9")
    with pytest.raises(FunctionNotFound):
        invoker.pool("f.g:$LATEST")
    assert [row["versions"] for row in invoker.status()] == [
        [{"version": v, **dict.fromkeys(_COUNTS, 0)} for v in ("1", "2", "3")]
    ]


_COUNTS = (
    "instances",
    "busy",
    "starting",
    "queued",
    "queued_behind",
    "in_flight",
    "cold_starts",
    "invocations",
    "throttles",
    "errors",
)
