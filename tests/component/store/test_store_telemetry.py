"""Invocation records and log lines on both backends: exact round trips, filters ANDed, paging
(invocations newest first by `before_ms`, logs oldest first by `after_seq`), literal grep,
pruning, big batches, and a `--follow` reader that loses nothing while two store objects write."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest

from lamina.store import Store
from lamina.store.types import InvocationRecord, LogLine

NOW = 1_700_000_000_000


def _record(n: int, **changes: Any) -> InvocationRecord:
    base = InvocationRecord(
        request_id=f"req-{n}",
        function_id="svc.fn",
        trigger="http",
        start_ms=NOW + n,
        duration_ms=1.5,
        billed_ms=2,
        init_ms=None,
        cold=False,
        memory_mb=128,
        max_memory_mb=None,
        status="ok",
    )
    return replace(base, **changes)


def _line(n: int, **changes: Any) -> LogLine:
    base = LogLine(
        time_ms=NOW + n,
        function_id="svc.fn",
        request_id=f"req-{n}",
        instance_id="i-1",
        stream="stdout",
        level="INFO",
        message=f"line {n}",
    )
    return replace(base, **changes)


def _without_seq(lines: list[LogLine]) -> list[LogLine]:
    return [replace(line, seq=0) for line in lines]


# -- invocations ---------------------------------------------------------------------------


async def test_invocation_records_round_trip_every_field_exactly(store: Store) -> None:
    full = InvocationRecord(
        request_id="req-full",
        function_id="users.signup",
        trigger="queue",
        start_ms=NOW,
        duration_ms=0.1 + 0.2,  # 0.30000000000000004: not a "nice" float
        billed_ms=1,
        init_ms=123.456789012345,
        cold=True,
        memory_mb=3008,
        max_memory_mb=77,
        status="error",
        error_type="ValueError",
        instance_id="i-7",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        parent_span_id="b7ad6b7169203331",
    )
    bare = _record(1, duration_ms=1e-9, billed_ms=0, start_ms=NOW - 1)

    await store.add_invocations([full, bare])

    assert await store.invocations() == [full, bare]
    [got] = await store.invocations(request_id="req-full")
    assert type(got.cold) is bool and type(got.duration_ms) is float
    assert (
        type(bare.cold) is bool and (await store.invocations(request_id="req-1"))[0].cold is False
    )


async def test_a_traces_spans_come_back_with_their_parent_links(store: Store) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    root = _record(1, trace_id=trace, span_id="a" * 16, parent_span_id=None)
    child = _record(2, trace_id=trace, span_id="b" * 16, parent_span_id="a" * 16)
    await store.add_invocations([root, child, _record(3, trace_id="f" * 32, span_id="c" * 16)])

    spans = await store.invocations(trace_id=trace)

    assert [(r.span_id, r.parent_span_id) for r in spans] == [
        ("b" * 16, "a" * 16),
        ("a" * 16, None),
    ]


async def test_empty_batches_and_a_zero_limit_do_nothing(store: Store) -> None:
    await store.add_invocations([])
    await store.add_logs([])
    await store.add_invocations([_record(1)])
    await store.add_logs([_line(1)])

    assert await store.invocations(limit=0) == []
    assert await store.logs(limit=0) == []
    assert len(await store.invocations()) == 1
    assert len(await store.logs()) == 1


INVOCATIONS = [
    _record(0, function_id="a", status="ok", trace_id="t1"),
    _record(1, function_id="b", status="error", trace_id="t1"),
    _record(2, function_id="a", status="error", trace_id="t2"),
    _record(3, function_id="a", status="ok", request_id="req-x"),
    _record(4, function_id="b", status="ok", request_id="req-x", trace_id="t2"),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, [4, 3, 2, 1, 0], id="no filter lists everything newest first"),
        pytest.param({"function_id": "a"}, [3, 2, 0], id="function alone"),
        pytest.param({"request_id": "req-x"}, [4, 3], id="request id alone"),
        pytest.param({"trace_id": "t1"}, [1, 0], id="trace id alone"),
        pytest.param({"status": "error"}, [2, 1], id="status alone"),
        pytest.param({"since_ms": NOW + 3}, [4, 3], id="since is inclusive"),
        pytest.param({"before_ms": NOW + 2}, [1, 0], id="before is exclusive"),
        pytest.param({"function_id": "a", "status": "ok"}, [3, 0], id="function and status"),
        pytest.param({"function_id": "b", "trace_id": "t2"}, [4], id="function and trace"),
        pytest.param(
            {"request_id": "req-x", "function_id": "a", "status": "ok"},
            [3],
            id="request, function and status",
        ),
        pytest.param(
            {"function_id": "a", "since_ms": NOW + 1, "before_ms": NOW + 3},
            [2],
            id="function within a time window",
        ),
        pytest.param({"function_id": "a", "trace_id": "t1", "status": "error"}, [], id="no match"),
        pytest.param({"limit": 2}, [4, 3], id="limit keeps the newest"),
    ],
)
async def test_invocation_filters_combine_with_and(
    store: Store, filters: dict[str, Any], expected: list[int]
) -> None:
    await store.add_invocations(INVOCATIONS)

    got = await store.invocations(**filters)

    assert got == [INVOCATIONS[i] for i in expected]


async def test_invocations_page_back_newest_first_with_before_ms(store: Store) -> None:
    records = [_record(n, start_ms=NOW + 10 * n) for n in range(25)]
    await store.add_invocations(records[:10])
    await store.add_invocations(records[10:])

    pages: list[list[InvocationRecord]] = []
    before: int | None = None
    while page := await store.invocations(before_ms=before, limit=10):
        pages.append(page)
        before = page[-1].start_ms

    assert [len(p) for p in pages] == [10, 10, 5]
    assert [r for p in pages for r in p] == records[::-1]


async def test_paging_by_start_and_seq_skips_no_record_that_started_in_the_same_ms(
    store: Store,
) -> None:
    records = [_record(n, start_ms=NOW + n // 4) for n in range(10)]  # four per millisecond
    await store.add_invocations(records)

    seen: list[InvocationRecord] = []
    cursor: tuple[int, int] | None = None
    while page := await store.invocations(
        before_ms=cursor[0] if cursor else None, before_seq=cursor[1] if cursor else None, limit=3
    ):
        seen += page
        cursor = (page[-1].start_ms, page[-1].seq)

    assert seen == records[::-1]
    assert len({r.seq for r in seen}) == 10


async def test_invocations_that_start_in_the_same_ms_list_the_later_insert_first(
    store: Store,
) -> None:
    first, second = _record(1, start_ms=NOW), _record(2, start_ms=NOW)
    await store.add_invocations([first])
    await store.add_invocations([second])

    assert await store.invocations() == [second, first]


# -- logs ----------------------------------------------------------------------------------


async def test_log_lines_round_trip_and_get_increasing_seqs_in_insertion_order(
    store: Store,
) -> None:
    lines = [
        _line(5, message="out of order time is kept as given"),
        _line(1, request_id=None, instance_id=None, stream="platform", level="ERROR"),
        _line(3, message="ünïcödé ✓ and \t tabs \\ and a trailing backslash \\"),
        _line(4, message="", seq=999),  # a caller's seq is ignored: the store assigns it
    ]
    await store.add_logs(lines[:2])
    await store.add_logs(lines[2:])

    got = await store.logs()

    assert _without_seq(got) == [replace(line, seq=0) for line in lines]
    seqs = [line.seq for line in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4 and seqs[0] > 0


LOGS = [
    _line(0, function_id="a", request_id="r1", message="starting up"),
    _line(1, function_id="a", request_id="r1", message="ERROR: boom"),
    _line(2, function_id="b", request_id="r2", message="boom in b"),
    _line(3, function_id="a", request_id="r3", message="done"),
    _line(4, function_id="b", request_id=None, message="instance crashed: boom"),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, [0, 1, 2, 3, 4], id="no filter lists everything oldest first"),
        pytest.param({"function_id": "a"}, [0, 1, 3], id="function alone"),
        pytest.param({"request_id": "r1"}, [0, 1], id="request id alone"),
        pytest.param({"since_ms": NOW + 3}, [3, 4], id="since is inclusive"),
        pytest.param({"grep": "boom"}, [1, 2, 4], id="grep alone"),
        pytest.param({"grep": "BOOM"}, [], id="grep is case-sensitive"),
        pytest.param({"function_id": "b", "grep": "boom"}, [2, 4], id="function and grep"),
        pytest.param({"request_id": "r1", "grep": "boom"}, [1], id="request id and grep"),
        pytest.param(
            {"function_id": "a", "since_ms": NOW + 1, "grep": "o"},
            [1, 3],
            id="function, since and grep",
        ),
        pytest.param({"function_id": "a", "request_id": "r2"}, [], id="no match"),
        pytest.param({"limit": 2}, [0, 1], id="limit keeps the oldest"),
    ],
)
async def test_log_filters_combine_with_and(
    store: Store, filters: dict[str, Any], expected: list[int]
) -> None:
    await store.add_logs(LOGS)

    got = await store.logs(**filters)

    assert _without_seq(got) == [LOGS[i] for i in expected]


async def test_after_seq_pages_forward_and_combines_with_filters(store: Store) -> None:
    await store.add_logs(LOGS)
    everything = await store.logs()

    after_second = await store.logs(after_seq=everything[1].seq)
    a_after_first = await store.logs(function_id="a", after_seq=everything[0].seq, limit=1)

    assert after_second == everything[2:]
    assert a_after_first == [everything[1]]
    assert await store.logs(after_seq=everything[-1].seq) == []


async def test_after_seq_follows_appended_lines_in_pages(store: Store) -> None:
    lines = [_line(n) for n in range(23)]
    for start in range(0, 23, 5):
        await store.add_logs(lines[start : start + 5])

    got: list[LogLine] = []
    last = 0
    while page := await store.logs(after_seq=last, limit=10):
        got.extend(page)
        last = page[-1].seq

    assert _without_seq(got) == lines


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("50%", ["loaded 50% of it"], id="percent is literal"),
        pytest.param("%", ["loaded 50% of it"], id="a lone percent matches only percents"),
        pytest.param("a_b", ["key a_b set"], id="underscore is literal"),
        pytest.param("_", ["key a_b set"], id="a lone underscore matches only underscores"),
        pytest.param("\\", ["C:\\temp"], id="backslash is literal"),
        pytest.param("[a]", ["list [a]"], id="brackets are literal"),
    ],
)
async def test_grep_is_a_plain_substring(store: Store, pattern: str, expected: list[str]) -> None:
    messages = ["loaded 50% of it", "loaded 500 of it", "key a_b set", "key axb set", "C:\\temp"]
    await store.add_logs([_line(n, message=m) for n, m in enumerate([*messages, "list [a]"])])

    got = await store.logs(grep=pattern)

    assert [line.message for line in got] == expected


# -- pruning -------------------------------------------------------------------------------


async def test_prune_deletes_records_and_lines_older_than_the_cutoff(store: Store) -> None:
    await store.add_invocations([_record(n) for n in range(6)])
    await store.add_logs([_line(n) for n in range(4)])

    deleted = await store.prune_telemetry(before_ms=NOW + 3)

    assert deleted == 3 + 3
    assert [r.start_ms for r in await store.invocations()] == [NOW + 5, NOW + 4, NOW + 3]
    assert [line.time_ms for line in await store.logs()] == [NOW + 3]
    assert await store.prune_telemetry(before_ms=NOW + 3) == 0


async def test_seqs_keep_increasing_after_every_line_is_pruned(store: Store) -> None:
    await store.add_logs([_line(n) for n in range(3)])
    last = (await store.logs())[-1].seq
    assert await store.prune_telemetry(before_ms=NOW + 100) == 3

    await store.add_logs([_line(50)])

    [new] = await store.logs(after_seq=last)
    assert new.seq > last and new.message == "line 50"


# -- volume and concurrency ----------------------------------------------------------------


async def test_a_batch_of_a_thousand_is_stored_whole(store: Store) -> None:
    records = [_record(n, duration_ms=n / 7, cold=n % 2 == 0) for n in range(1000)]
    lines = [_line(n) for n in range(1000)]

    await store.add_invocations(records)
    await store.add_logs(lines)

    assert await store.invocations(limit=2000) == records[::-1]
    got = await store.logs(limit=2000)
    assert _without_seq(got) == lines
    assert all(a.seq < b.seq for a, b in pairwise(got))


@pytest.mark.parametrize(
    "text",
    [
        'quotes " and \\ backslashes, a tab\t and emoji \U0001f389 ünïcödé',
        "[1, 2]",  # text that is itself JSON stays text
        "",
        "x" * 100_000,
    ],
)
async def test_any_text_a_function_writes_is_stored_exactly(store: Store, text: str) -> None:
    await store.add_logs([_line(1, message=text, request_id=None)])
    await store.add_invocations([_record(1, error_type=text)])

    assert [line.message for line in await store.logs()] == [text]
    assert [r.error_type for r in await store.invocations()] == [text]


async def test_nul_and_lone_surrogates_are_replaced_and_the_line_kept(store: Store) -> None:
    """PostgreSQL text cannot hold NUL and UTF-8 cannot encode a lone surrogate."""
    await store.add_logs([_line(1, message="a \x00 b"), _line(2, message="c \udcff d")])

    got = [line.message for line in await store.logs()]
    assert got[0] == "a \ufffd b"
    assert got[1].startswith("c \ufffd") and got[1].endswith(" d")


async def test_a_follower_misses_no_line_while_two_stores_write_concurrently(
    new_store: Callable[[], Awaitable[Store]],
) -> None:
    one, two = await new_store(), await new_store()
    writers_done = asyncio.Event()
    followed: list[LogLine] = []

    async def write(store: Store, name: str) -> None:
        for batch in range(25):
            await store.add_logs(
                [_line(i, message=f"{name}-{batch}-{i}", function_id=name) for i in range(20)]
            )

    async def follow() -> None:
        last = 0
        while True:
            finished = writers_done.is_set()  # read before the query: nothing can come later
            page = await one.logs(after_seq=last, limit=250)
            followed.extend(page)
            if page:
                last = page[-1].seq
            elif finished:
                return
            else:
                await asyncio.sleep(0)

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(write(s, f"w{k}") for k, s in enumerate([one, two, one, two])))
    writers_done.set()
    await asyncio.wait_for(follower, timeout=30)

    seqs = [line.seq for line in followed]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len(followed) == 4 * 25 * 20
    assert {line.message for line in followed} == {
        line.message for line in await two.logs(limit=5000)
    }
    for writer in {line.function_id for line in followed}:  # each writer's lines stay in order
        mine = [line.message for line in followed if line.function_id == writer]
        assert mine == [f"{writer}-{b}-{i}" for b in range(25) for i in range(20)]


async def test_newest_returns_the_last_lines_still_in_order(store: Store) -> None:
    await store.add_logs([_line(n, function_id="svc.a" if n % 2 else "svc.b") for n in range(10)])
    tail = await store.logs(function_id="svc.a", limit=3, newest=True)
    head = await store.logs(function_id="svc.a", limit=3)
    assert [line.message for line in tail] == [_line(n).message for n in (5, 7, 9)]
    assert [line.message for line in head] == [_line(n).message for n in (1, 3, 5)]
