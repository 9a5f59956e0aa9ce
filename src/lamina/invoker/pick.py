"""Pure choices the pool makes on every invocation, over plain values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

__all__ = ["can_send_behind", "pick_behind", "pick_instance"]


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
    if concurrency == 1:  # the usual case, on every invocation: free means idle
        used = 0.0
        for slot in slots:
            if slot.in_flight == 0 and (best is None or slot.last_used_s > used):
                best, used = slot, slot.last_used_s
        return best
    for slot in slots:
        if slot.in_flight >= concurrency:
            continue
        if best is None or (slot.in_flight, slot.last_used_s) > (best.in_flight, best.last_used_s):
            best = slot
    return best


class _SerialSlotLike(_SlotLike, Protocol):
    @property
    def serial(self) -> bool:
        """Its instance is alive and runs what it is sent one at a time, in order."""
        ...


T = TypeVar("T", bound=_SerialSlotLike)


def pick_behind(slots: Iterable[T], since_s: float) -> T | None:
    """The instance to send an invocation behind the one it runs, or None.

    Only a serial instance running exactly one invocation, started at `since_s` or later (one
    that has run longer may be stuck in a long one); of those, the one whose invocation started
    first, as it should be the first to finish. Pinned by tests/unit/invoker/test_pick.py.
    """
    best: T | None = None
    for slot in slots:  # `can_send_behind` inlined, cheapest test first: it runs per slot
        if (
            slot.in_flight == 1
            and slot.last_used_s >= since_s
            and slot.serial
            and (best is None or slot.last_used_s < best.last_used_s)
        ):
            best = slot
    return best


def can_send_behind(slot: _SerialSlotLike, since_s: float) -> bool:
    """Whether `slot` may be sent an invocation behind the one it runs (see `pick_behind`)."""
    return slot.serial and slot.in_flight == 1 and slot.last_used_s >= since_s
