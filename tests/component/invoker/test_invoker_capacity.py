"""Instance leases shared by control planes on a real PostgreSQL schema, with a fake clock:
`max_instances` holds across planes, a plane that goes silent gives its share back after its
ttl, and one that comes back takes its leases again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from lamina.clock import FakeClock
from lamina.invoker.capacity import SharedCapacity
from lamina.store.postgres import PostgresStore

pytestmark = pytest.mark.timeout(30)

TTL_S = 15.0
Plane = tuple[SharedCapacity, PostgresStore]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def new_plane(
    postgres_schema_url: str, clock: FakeClock
) -> AsyncIterator[Callable[[], Awaitable[Plane]]]:
    """A control plane's capacity on a store of its own (its own connections), registered."""
    made: list[Plane] = []

    async def make() -> Plane:
        store = PostgresStore.from_url(postgres_schema_url)
        await store.open()
        n = len(made)
        capacity = SharedCapacity(
            store, clock, gateway_url=f"http://gw{n}", admin_url=f"http://admin{n}", ttl_s=TTL_S
        )
        await capacity.start()
        made.append((capacity, store))
        return capacity, store

    yield make
    for capacity, store in made:
        await capacity.stop()
        await store.close()


async def _granted(capacity: SharedCapacity, n: int, max_instances: int) -> list[str]:
    leases = [await capacity.acquire("svc.fn", max_instances) for _ in range(n)]
    return [lease for lease in leases if lease is not None]


async def _periods(clock: FakeClock, n: int, beating: SharedCapacity) -> None:
    """Advance `n` heartbeat periods, each time until `beating` has written its beat."""
    for _ in range(n):
        beats = beating.beats
        clock.advance(TTL_S / 3)
        async with asyncio.timeout(5):
            while beating.beats == beats:
                await asyncio.sleep(0.005)


async def test_max_instances_is_one_limit_across_planes(
    new_plane: Callable[[], Awaitable[Plane]],
) -> None:
    (a, _), (b, _) = await new_plane(), await new_plane()

    assert len(await _granted(a, 2, max_instances=3)) == 2
    assert len(await _granted(b, 2, max_instances=3)) == 1, "only one is left for plane b"
    assert await a.acquire("svc.other", 3) is not None, "each function has its own limit"


async def test_a_released_lease_is_free_for_another_plane_at_once(
    new_plane: Callable[[], Awaitable[Plane]],
) -> None:
    (a, _), (b, _) = await new_plane(), await new_plane()
    held = await _granted(a, 2, max_instances=2)
    assert await b.acquire("svc.fn", 2) is None

    a.release(held[0])
    await a.stop()  # waits for the release to be written (and then unregisters a)

    assert await b.acquire("svc.fn", 2) is not None
    assert await b.acquire("svc.fn", 2) is not None, "a's other lease went with a's stop"


async def test_concurrent_acquires_on_two_planes_never_pass_the_limit(
    new_plane: Callable[[], Awaitable[Plane]],
) -> None:
    (a, _), (b, _) = await new_plane(), await new_plane()

    results = await asyncio.gather(*(p.acquire("svc.fn", 5) for p in (a, b) * 15))

    assert sum(r is not None for r in results) == 5


async def test_a_silent_plane_gives_its_instances_back_after_its_ttl(
    new_plane: Callable[[], Awaitable[Plane]], clock: FakeClock
) -> None:
    (a, a_store), (b, _) = await new_plane(), await new_plane()
    assert len(await _granted(a, 2, max_instances=2)) == 2
    await a_store.close()  # plane a is cut off, as if killed: no more heartbeats

    await _periods(clock, 2, b)
    clock.advance(TTL_S / 3 - 1)
    assert await b.acquire("svc.fn", 2) is None, "a still counts until its ttl runs out"

    clock.advance(1)
    assert len(await _granted(b, 2, max_instances=2)) == 2


async def test_a_plane_back_after_being_presumed_gone_takes_its_leases_again(
    new_plane: Callable[[], Awaitable[Plane]], clock: FakeClock
) -> None:
    (a, a_store), (b, _) = await new_plane(), await new_plane()
    assert len(await _granted(a, 2, max_instances=3)) == 2
    await a_store.close()
    await _periods(clock, 3, b)  # b's third beat drops the expired plane a and its leases
    assert len(await _granted(b, 2, max_instances=3)) == 2

    await a_store.open()  # a reconnects: its two instances still run
    await a.beat()

    planes = await a_store.control_planes(now_ms=int(clock.wall() * 1000))
    assert {p.plane_id: leases for p, leases in planes} == {
        a.plane_id: {"svc.fn": 2},
        b.plane_id: {"svc.fn": 2},
    }
    assert await b.acquire("svc.fn", 3) is None, "4 run against a limit of 3: none may start"
