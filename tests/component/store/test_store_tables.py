"""Service tables on a real database: the same suite on SQLite (a file in tmp_path) and on
PostgreSQL (a schema of its own). Time is a FakeClock, so TTL expiry is exact."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamina.clock import FakeClock
from lamina.errors import ConditionFailed, TableError, TableNotFound
from lamina.store.tables import Table, TableDef, Tables, open_engine, service_url

DEFS = {
    "users": TableDef("users", key="id"),
    "events": TableDef("events", key="user", sort="at"),
    "sessions": TableDef("sessions", key="id", ttl="expires_at"),
    "timeline": TableDef("timeline", key="user", sort="at", ttl="exp"),
}

OpenTables = Callable[..., Tables]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The platform store URL the service tables derive from: None is SQLite."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def open_tables(store_url: str | None, tmp_path: Path, clock: FakeClock) -> Iterator[OpenTables]:
    """Opens a service's tables (each call: its own engine and connection) and creates them."""
    opened: list[Tables] = []

    def make(
        service: str = "shop",
        defs: dict[str, TableDef] | None = None,
        others: dict[str, str] | None = None,
    ) -> Tables:
        url = service_url(store_url, service, tmp_path / "state")
        tables = Tables(service, defs or DEFS, open_engine(url), clock, others or {})
        opened.append(tables)
        tables.create()
        return tables

    yield make
    for tables in opened:
        tables.close()


@pytest.fixture
def shop(open_tables: OpenTables) -> Tables:
    return open_tables()


# -- items ---------------------------------------------------------------------------------------
def test_put_get_delete_round_trip(shop: Tables) -> None:
    users = shop.table("users")
    item = {"id": "u1", "name": "Ada", "tags": ["x", "y"], "n": 1.5, "nested": {"a": None}}
    users.put(item)
    assert users.get("u1") == item
    assert users.get("u2") is None
    users.put({"id": "u1", "name": "Grace"})  # put replaces the whole item
    assert users.get("u1") == {"id": "u1", "name": "Grace"}
    assert users.delete("u1") is True
    assert users.delete("u1") is False
    assert users.get("u1") is None


def test_numbers_are_keys_by_value(shop: Tables) -> None:
    users = shop.table("users")
    users.put({"id": 7, "v": "int"})
    users.put({"id": "7", "v": "str"})
    assert users.get(7.0) == {"id": 7, "v": "int"}
    assert users.get("7") == {"id": "7", "v": "str"}


def test_put_if_absent_refuses_an_existing_item(shop: Tables) -> None:
    users = shop.table("users")
    users.put({"id": "u1", "v": 1}, if_absent=True)
    with pytest.raises(ConditionFailed, match="if_absent") as info:
        users.put({"id": "u1", "v": 2}, if_absent=True)
    assert info.value.key == "u1"
    assert users.get("u1") == {"id": "u1", "v": 1}
    users.delete("u1")
    users.put({"id": "u1", "v": 3}, if_absent=True)
    assert users.get("u1") == {"id": "u1", "v": 3}


def test_sort_key_tables_take_a_pair(shop: Tables) -> None:
    events = shop.table("events")
    events.put({"user": "u1", "at": 10, "what": "login"})
    assert events.get(("u1", 10)) == {"user": "u1", "at": 10, "what": "login"}
    assert events.get(["u1", 10]) == {"user": "u1", "at": 10, "what": "login"}
    assert events.get(("u1", 11)) is None
    with pytest.raises(TableError, match=r"expected a \(user, at\) pair"):
        events.get("u1")


@pytest.mark.parametrize(
    ("table", "item", "message"),
    [
        ("users", {"name": "x"}, "item has no attribute 'id' \\(the table's key\\)"),
        ("events", {"user": "u"}, "item has no attribute 'at' \\(the table's sort key\\)"),
        ("users", {"id": True}, "expected a string or a number, got bool"),
        ("users", {"id": [1]}, "expected a string or a number, got list"),
        ("users", {"id": 2**60}, "expected an integer within"),
        ("users", {"id": float("nan")}, "expected a finite number"),
        ("users", {"id": "a\x00b"}, "cannot contain NUL"),
        ("users", ["id", 1], "item: expected a dict, got list"),
        ("users", {"id": "x", "when": object()}, "item: not a JSON document"),
    ],
    ids=[
        "an item without its key is refused",
        "an item without its sort key is refused",
        "a boolean key is refused",
        "a list key is refused",
        "an integer past 2**53 is refused",
        "NaN is refused",
        "NUL in a key string is refused",
        "a list item is refused",
        "a value JSON cannot hold is refused",
    ],
)
def test_bad_items_get_a_clear_error(shop: Tables, table: str, item: Any, message: str) -> None:
    with pytest.raises(TableError, match=message) as info:
        shop.table(table).put(item)
    assert str(info.value).startswith(f"table {table!r}: ")


# -- update --------------------------------------------------------------------------------------
def test_update_sets_and_adds_and_returns_the_new_item(shop: Tables) -> None:
    users = shop.table("users")
    users.put({"id": "u1", "name": "Ada", "visits": 2, "score": 1.5, "gone": None})
    new = users.update("u1", set={"name": "Grace", "tags": ["a"]}, add={"visits": 3, "fresh": 1})
    assert new == {"id": "u1", "name": "Grace", "tags": ["a"], "visits": 5, "score": 1.5,
                   "gone": None, "fresh": 1}  # fmt: skip
    assert users.update("u1", add={"score": 1, "gone": 2})["score"] == 2.5
    assert users.get("u1") == {**new, "score": 2.5, "gone": 2}
    assert users.update("u1", set={"name": None})["name"] is None


def test_update_of_a_missing_item_fails_or_creates_it(shop: Tables) -> None:
    users = shop.table("users")
    with pytest.raises(ConditionFailed, match="if_exists failed: an item with key 'u9'"):
        users.update("u9", add={"n": 1})
    assert users.get("u9") is None
    assert users.update("u9", set={"a": "b"}, add={"n": 2}, if_exists=False) == {
        "id": "u9",
        "a": "b",
        "n": 2,
    }
    assert users.update("u9", add={"n": 2}, if_exists=False)["n"] == 4
    events = shop.table("events")
    assert events.update(("u1", 5), add={"n": 1}, if_exists=False) == {
        "user": "u1",
        "at": 5,
        "n": 1,
    }


def test_update_refuses_what_it_cannot_do(shop: Tables) -> None:
    users = shop.table("users")
    users.put({"id": "u1", "name": "Ada"})
    with pytest.raises(TableError, match="attribute 'name' of item 'u1' holds str 'Ada'"):
        users.update("u1", add={"name": 1})
    with pytest.raises(TableError, match="attribute 'name' of item 'u1' holds str"):
        users.update("u1", add={"name": 1}, if_exists=False)
    assert users.get("u1") == {"id": "u1", "name": "Ada"}
    with pytest.raises(TableError, match="cannot change the key attribute 'id'"):
        users.update("u1", set={"id": "u2"})
    with pytest.raises(TableError, match="'n' is in both set and add"):
        users.update("u1", set={"n": 1}, add={"n": 1})
    with pytest.raises(TableError, match="add 'n': expected a finite number, got 'x'"):
        users.update("u1", add={"n": "x"})
    with pytest.raises(TableError, match="set: expected an attribute name"):
        users.update("u1", set={'a"b': 1})


# -- query and scan ------------------------------------------------------------------------------
def _fill_events(events: Table) -> None:
    for at in (2, 10, 1, 3.5, -4):
        events.put({"user": "u1", "at": at})
    for at in ("2024-01-02", "2024-01-10", "2023-12-31", "2024-02-01", "b"):
        events.put({"user": "u1", "at": at})
    events.put({"user": "u2", "at": 1})


def test_query_orders_numbers_numerically_then_strings(shop: Tables) -> None:
    events = shop.table("events")
    _fill_events(events)
    page = events.query("u1")
    assert [i["at"] for i in page] == [
        -4, 1, 2, 3.5, 10, "2023-12-31", "2024-01-02", "2024-01-10", "2024-02-01", "b",
    ]  # fmt: skip
    assert page.cursor is None
    assert [i["at"] for i in events.query("u1", reverse=True, limit=3)] == [
        "b",
        "2024-02-01",
        "2024-01-10",
    ]


def test_query_by_prefix_and_between(shop: Tables) -> None:
    events = shop.table("events")
    _fill_events(events)
    assert [i["at"] for i in events.query("u1", prefix="2024-01")] == ["2024-01-02", "2024-01-10"]
    assert [i["at"] for i in events.query("u1", prefix="2024", reverse=True)] == [
        "2024-02-01",
        "2024-01-10",
        "2024-01-02",
    ]
    assert [i["at"] for i in events.query("u1", between=(2, 10))] == [2, 3.5, 10]
    assert [i["at"] for i in events.query("u1", between=("2024-01-01", "2024-01-31"))] == [
        "2024-01-02",
        "2024-01-10",
    ]
    assert events.query("u3").items == []


def test_pages_follow_cursors_without_gaps_or_repeats(shop: Tables) -> None:
    events = shop.table("events")
    for at in range(25):
        events.put({"user": "u1", "at": at})
    for reverse in (False, True):
        seen: list[int] = []
        cursor = None
        while True:
            page = events.query("u1", limit=7, reverse=reverse, cursor=cursor, between=(3, 21))
            seen += [item["at"] for item in page]
            assert len(page) <= 7
            cursor = page.cursor
            if cursor is None:
                break
        assert seen == (list(range(3, 22))[::-1] if reverse else list(range(3, 22)))


def test_scan_pages_through_every_item(shop: Tables) -> None:
    users = shop.table("users")
    for i in range(23):
        users.put({"id": f"u{i:02d}"})
    users.put({"id": 5})
    pages = [users.scan(limit=10)]
    while pages[-1].cursor is not None:
        pages.append(users.scan(limit=10, cursor=pages[-1].cursor))
    assert [len(p) for p in pages] == [10, 10, 4]
    ids = [item["id"] for page in pages for item in page]
    assert ids == [5, *(f"u{i:02d}" for i in range(23))]
    assert users.count() == 24


def test_query_and_cursor_mistakes_get_clear_errors(shop: Tables) -> None:
    users, events = shop.table("users"), shop.table("events")
    users.put({"id": "a"})
    users.put({"id": "b"})
    with pytest.raises(TableError, match="prefix and between need a sort key"):
        users.query("a", prefix="x")
    with pytest.raises(TableError, match="give prefix or between, not both"):
        events.query("u1", prefix="x", between=(1, 2))
    with pytest.raises(TableError, match="prefix: expected a string"):
        events.query("u1", prefix=5)  # type: ignore[arg-type]
    with pytest.raises(TableError, match="limit: expected a whole number"):
        users.scan(limit=0)
    cursor = users.scan(limit=1).cursor
    assert cursor is not None
    with pytest.raises(TableError, match="it is a cursor of table 'users'"):
        events.scan(cursor=cursor)
    with pytest.raises(TableError, match="not a cursor from a page"):
        users.scan(cursor="nonsense!")
    assert users.query("a").items == [{"id": "a"}]


# -- TTL -----------------------------------------------------------------------------------------
def test_expired_items_are_never_returned(shop: Tables, clock: FakeClock) -> None:
    sessions, timeline = shop.table("sessions"), shop.table("timeline")
    now = clock.wall()
    sessions.put({"id": "s1", "expires_at": now + 60})
    sessions.put({"id": "s2", "expires_at": now + 120})
    sessions.put({"id": "forever"})
    sessions.put({"id": "text", "expires_at": "tomorrow"})  # not a number: never expires
    timeline.put({"user": "u", "at": 1, "exp": now + 60})
    timeline.put({"user": "u", "at": 2})
    assert sessions.get("s1") is not None
    clock.advance(60)  # s1 expires at exactly now
    assert sessions.get("s1") is None
    assert sorted(i["id"] for i in sessions.scan()) == ["forever", "s2", "text"]
    assert sessions.count() == 3
    assert [i["at"] for i in timeline.query("u")] == [2]
    with pytest.raises(ConditionFailed):
        sessions.update("s1", set={"x": 1})
    assert sessions.delete("s1") is False  # it was gone already


def test_an_expired_item_counts_as_absent_for_writes(shop: Tables, clock: FakeClock) -> None:
    sessions = shop.table("sessions")
    sessions.put({"id": "s1", "expires_at": clock.wall() + 5, "n": 10})
    clock.advance(5)
    sessions.put({"id": "s1", "v": "new"}, if_absent=True)
    assert sessions.get("s1") == {"id": "s1", "v": "new"}
    sessions.put({"id": "s2", "expires_at": clock.wall() + 5, "n": 10})
    clock.advance(10)
    assert sessions.update("s2", add={"n": 1}, if_exists=False) == {"id": "s2", "n": 1}


def test_updating_the_ttl_attribute_moves_the_expiry(shop: Tables, clock: FakeClock) -> None:
    sessions = shop.table("sessions")
    sessions.put({"id": "s1", "expires_at": clock.wall() + 5})
    sessions.update("s1", add={"expires_at": 100})
    clock.advance(50)
    assert sessions.get("s1") is not None
    clock.advance(60)
    assert sessions.get("s1") is None


def test_sweep_deletes_expired_items_only(shop: Tables, clock: FakeClock) -> None:
    sessions = shop.table("sessions")
    for i in range(12):
        sessions.put({"id": f"s{i}", "expires_at": clock.wall() + (10 if i % 2 else 1000)})
    clock.advance(10)
    engine = shop.engine
    assert engine.sweep("sessions", clock.wall(), 4) == 4
    assert engine.sweep("sessions", clock.wall(), 100) == 2
    assert engine.sweep("sessions", clock.wall(), 100) == 0
    clock.advance(-10_000)  # the rows themselves are gone, not just hidden
    assert sorted(i["id"] for i in sessions.scan()) == [f"s{i}" for i in (0, 10, 2, 4, 6, 8)]


# -- concurrency ---------------------------------------------------------------------------------
def _in_threads(count: int, work: Callable[[int], None]) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def test_concurrent_adds_from_separate_connections_lose_none(open_tables: OpenTables) -> None:
    """10 connections (as 10 instances would have), 5 increments each, all at once."""
    clients = [open_tables().table("users") for _ in range(10)]
    clients[0].put({"id": "counter", "n": 0})

    def work(i: int) -> None:
        for _ in range(5):
            clients[i].update("counter", add={"n": 1})
            clients[i].update("fresh", add={"n": 1}, if_exists=False)

    _in_threads(10, work)
    assert clients[0].get("counter") == {"id": "counter", "n": 50}
    assert clients[0].get("fresh") == {"id": "fresh", "n": 50}


def test_exactly_one_conditional_put_wins(open_tables: OpenTables) -> None:
    clients = [open_tables().table("users") for _ in range(10)]
    wins: list[int] = []

    def work(i: int) -> None:
        for round_ in range(5):
            try:
                clients[i].put({"id": f"lock{round_}", "owner": i}, if_absent=True)
            except ConditionFailed:
                continue
            wins.append(round_)

    _in_threads(10, work)
    assert sorted(wins) == [0, 1, 2, 3, 4]


# -- isolation and schema ------------------------------------------------------------------------
def test_services_do_not_share_data(open_tables: OpenTables) -> None:
    shop = open_tables("shop", others={"ledger": "billing"})
    billing = open_tables(
        "billing", {"users": TableDef("users", key="id"), "ledger": TableDef("ledger", key="id")}
    )
    shop.table("users").put({"id": "u1", "owner": "shop"})
    billing.table("users").put({"id": "u1", "owner": "billing"})
    assert shop.table("users").get("u1") == {"id": "u1", "owner": "shop"}
    assert billing.table("users").get("u1") == {"id": "u1", "owner": "billing"}
    with pytest.raises(TableNotFound, match="it belongs to service 'billing'") as info:
        shop.table("ledger")
    assert info.value.service == "shop"
    assert "its tables: 'events', 'sessions', 'timeline', 'users'" in str(info.value)
    with pytest.raises(TableNotFound, match=r"no service in lamina\.yaml declares it"):
        shop.table("nope")


def test_a_changed_key_is_refused_and_a_changed_ttl_is_followed(
    open_tables: OpenTables, clock: FakeClock
) -> None:
    first = open_tables("svc", {"t": TableDef("t", key="id", ttl="a")})
    first.table("t").put({"id": 1, "a": clock.wall() + 5, "b": clock.wall() + 500})
    with pytest.raises(TableError, match=r"created with key 'id'.*now says key 'pk'"):
        open_tables("svc", {"t": TableDef("t", key="pk", ttl="a")})
    again = open_tables("svc", {"t": TableDef("t", key="id", ttl="b")})
    clock.advance(10)
    assert again.table("t").get(1) is not None  # expires by `b` now, not by `a`
    clock.advance(500)
    assert again.table("t").get(1) is None
