"""Pure choices the pool makes on every invocation, over plain values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

__all__ = ["pick_instance"]


class _SlotLike(Protocol):
    in_flight: int
    last_used_s: float


S = TypeVar("S", bound=_SlotLike)


def pick_instance(slots: Iterable[S], concurrency: int) -> S | None:
    """The instance that should take the next invocation, or None when all are full.

    Prefers the busiest instance that still has a free slot (packing work onto few instances),
    then the most recently used one, so that the least recently used instances stay idle long
    enough for keep-alive to stop them. Pinned by tests/unit/invoker/test_pick.py.
    """
    best: S | None = None
    for slot in slots:
        if slot.in_flight >= concurrency:
            continue
        if best is None or (slot.in_flight, slot.last_used_s) > (best.in_flight, best.last_used_s):
            best = slot
    return best
