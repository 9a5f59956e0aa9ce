"""Events fixtures: a fake clock, fake functions, and consumers stopped at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from fakes import FakeFunctions, Stoppable

from lamina.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def functions() -> FakeFunctions:
    return FakeFunctions()


@pytest.fixture
async def started() -> AsyncIterator[Callable[[Stoppable], Stoppable]]:
    """Start a consumer-owning object now; stop it (no grace) when the test ends."""
    running: list[Stoppable] = []

    def start(thing: Stoppable) -> Stoppable:
        thing.start()
        running.append(thing)
        return thing

    yield start
    for thing in running:
        await thing.stop(0)
