"""Which version of a function an invocation runs: qualifiers and alias weights, pure.

A target names a function and optionally a qualifier, as AWS's `FunctionName=name:qualifier`:
`orders.create` (the `live` alias), `orders.create:beta` (an alias), `orders.create:7` (version
7) or `orders.create:$LATEST` (the code the platform started with, before any deploy). An
alias points at a version and may send `canary_weight` percent of its invocations to a canary
version instead; `pick_version` decides one invocation from a uniform draw in [0, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LATEST", "LIVE", "AliasRoute", "parse_target", "pick_version", "qualified"]

LATEST = "$LATEST"
LIVE = "live"  # the alias routes and triggers use unless they name another


@dataclass(frozen=True, slots=True)
class AliasRoute:
    """Where an alias sends invocations."""

    version: int
    canary_version: int | None = None
    canary_weight: float = 0.0  # percent of invocations sent to the canary, 0..100

    def versions(self) -> tuple[int, ...]:
        """The versions it may pick (the canary only while its weight is above 0)."""
        if self.canary_version is None or self.canary_weight <= 0:
            return (self.version,)
        return (self.version, self.canary_version)


def pick_version(route: AliasRoute, draw: float) -> int:
    """The version one invocation runs, given a uniform `draw` in [0, 1): the canary when
    `draw * 100 < canary_weight`. With weight 10, draws below 0.1 go to the canary, so over
    many invocations 10% do (tests/unit/invoker/test_aliases.py pins it)."""
    if route.canary_version is not None and draw * 100 < route.canary_weight:
        return route.canary_version
    return route.version


def parse_target(target: str) -> tuple[str, str]:
    """`(function id, qualifier)` of `orders.create[:qualifier]`; no qualifier means `live`."""
    function_id, sep, qualifier = target.partition(":")
    return function_id, (qualifier if sep else LIVE)


def qualified(function_id: str, qualifier: str | None) -> str:
    """The target `orders.create:qualifier`, or `orders.create` (its `live` alias) for None."""
    return f"{function_id}:{qualifier}" if qualifier else function_id
