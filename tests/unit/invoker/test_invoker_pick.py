from __future__ import annotations

from dataclasses import dataclass

import pytest

from lamina.invoker.pick import pick_behind, pick_instance


@dataclass
class Slot:
    name: str
    in_flight: int
    last_used_s: float
    serial: bool = True


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
            [Slot("first", 0, 5.0), Slot("busy", 1, 9.0), Slot("second", 0, 5.0)],
            1,
            "first",
            id="of idle instances used at the same time the first is picked",
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


@pytest.mark.parametrize(
    ("slots", "expected"),
    [
        pytest.param([], None, id="no instances means no pick"),
        pytest.param([Slot("idle", 0, 9.0)], None, id="an idle instance is picked as free"),
        pytest.param(
            [Slot("one", 1, 9.0), Slot("two", 2, 9.5)],
            "one",
            id="never more than one invocation behind the running one",
        ),
        pytest.param(
            [Slot("async", 1, 9.0, serial=False)],
            None,
            id="an instance that runs what it is sent at once is never sent one behind",
        ),
        pytest.param(
            [Slot("long", 1, 4.0), Slot("recent", 1, 9.0)],
            "recent",
            id="an invocation running since before the bound may be a long one: not behind it",
        ),
        pytest.param(
            [Slot("later", 1, 9.0), Slot("first", 1, 5.0), Slot("mid", 1, 7.0)],
            "first",
            id="behind the invocation that started first, as it should end first",
        ),
    ],
)
def test_pick_behind(slots: list[Slot], expected: str | None) -> None:
    picked = pick_behind(slots, since_s=5.0)
    assert (picked.name if picked else None) == expected
