from __future__ import annotations

from dataclasses import dataclass

import pytest

from lamina.invoker.pick import pick_instance


@dataclass
class Slot:
    name: str
    in_flight: int
    last_used_s: float


@pytest.mark.parametrize(
    ("slots", "concurrency", "expected"),
    [
        pytest.param([], 1, None, id="no instances means no pick"),
        pytest.param([Slot("a", 1, 5.0)], 1, None, id="a full instance is never picked"),
        pytest.param(
            [Slot("old", 0, 1.0), Slot("recent", 0, 9.0)],
            1,
            "recent",
            id="the most recently used idle instance is picked so older ones can expire",
        ),
        pytest.param(
            [Slot("idle", 0, 9.0), Slot("busy", 2, 1.0)],
            4,
            "busy",
            id="with concurrency the busiest instance with a free slot is packed first",
        ),
        pytest.param(
            [Slot("full", 4, 9.0), Slot("idle", 0, 1.0)],
            4,
            "idle",
            id="a full instance is skipped for one with room",
        ),
    ],
)
def test_pick_instance(slots: list[Slot], concurrency: int, expected: str | None) -> None:
    picked = pick_instance(slots, concurrency)
    assert (picked.name if picked else None) == expected
