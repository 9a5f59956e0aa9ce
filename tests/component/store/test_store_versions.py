"""Deploys, function versions and aliases on both backends, and the version column of
invocation records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from lamina.errors import StoreError
from lamina.store import Store
from lamina.store.types import AliasRecord, FunctionVersion, InvocationRecord


def version(fid: str, n: int, bundle: str = "b1") -> FunctionVersion:
    return FunctionVersion(fid, n, f"code{n}", f"config{n}", bundle, '{"handler": "h.h"}', 100 + n)


async def test_a_deploy_stores_versions_aliases_and_itself_at_once(
    store: Store, new_store: Callable[[], Awaitable[Store]]
) -> None:
    assert await store.last_deploy() is None
    live = AliasRecord("orders.create", "live", 1, updated_ms=10)
    first = await store.add_deploy(
        bundle="b1",
        app="shop",
        versions=[version("orders.create", 1), version("users.get", 1)],
        aliases=[live, AliasRecord("users.get", "live", 1, updated_ms=10)],
        now_ms=10,
    )
    moved = AliasRecord("orders.create", "live", 2, None, 0, 1, 20)
    second = await store.add_deploy(
        bundle="b2",
        app="shop",
        versions=[version("orders.create", 2, "b2")],
        aliases=[moved],
        now_ms=20,
    )
    other = await new_store()  # another process sees the same
    assert second > first
    last = await other.last_deploy()
    assert last is not None and (last.id, last.bundle, last.created_ms) == (second, "b2", 20)
    assert [v.version for v in await other.function_versions("orders.create")] == [1, 2]
    assert await other.function_versions() == [
        version("orders.create", 1),
        version("orders.create", 2, "b2"),
        version("users.get", 1),
    ]
    assert await other.aliases("orders.create") == [moved]


async def test_a_deploy_repeating_a_version_changes_nothing(store: Store) -> None:
    await store.add_deploy(
        bundle="b1", app="shop", versions=[version("f.g", 1)], aliases=[], now_ms=1
    )
    with pytest.raises(StoreError):
        await store.add_deploy(
            bundle="b2",
            app="shop",
            versions=[version("f.g", 2), version("f.g", 1)],
            aliases=[AliasRecord("f.g", "live", 2)],
            now_ms=2,
        )
    assert [v.version for v in await store.function_versions()] == [1]
    assert await store.aliases() == []
    last = await store.last_deploy()
    assert last is not None and last.bundle == "b1"


async def test_aliases_are_set_replaced_listed_and_deleted(store: Store) -> None:
    await store.set_alias(AliasRecord("f.g", "live", 1, updated_ms=1))
    await store.set_alias(AliasRecord("f.g", "beta", 2, 3, 10, None, 2))
    await store.set_alias(AliasRecord("f.g", "live", 2, 3, 25, 1, 3))
    await store.set_alias(AliasRecord("a.b", "live", 7, updated_ms=4))
    assert await store.aliases("f.g") == [
        AliasRecord("f.g", "beta", 2, 3, 10, None, 2),
        AliasRecord("f.g", "live", 2, 3, 25, 1, 3),
    ]
    assert [a.function_id for a in await store.aliases()] == ["a.b", "f.g", "f.g"]
    assert await store.delete_alias("f.g", "beta") is True
    assert await store.delete_alias("f.g", "beta") is False
    assert [a.name for a in await store.aliases("f.g")] == ["live"]


async def test_invocation_records_keep_their_version(store: Store) -> None:
    records = [
        InvocationRecord("r1", "f.g", "http", 1000, 1.0, 1, None, False, 128, None, "ok"),
        InvocationRecord(
            "r2", "f.g", "http", 1001, 1.0, 1, None, False, 128, None, "ok", version="3"
        ),
    ]
    await store.add_invocations(records)
    got = {r.request_id: r.version for r in await store.invocations(function_id="f.g")}
    assert got == {"r1": None, "r2": "3"}
