"""Queue and topic triggers on the real platform with real functions: Powertools' SQS
BatchProcessor gets only its failed record back; a topic reaches its two subscribers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness import run_platform

from lamina.control import Platform


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _until(
    check: Callable[[], Awaitable[bool] | bool], what: str, deadline_s: float = 15
) -> None:
    """Bounded wait for an effect in another process (the handler writes a file)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        done = check()
        if not isinstance(done, bool):
            done = await done
        if done:
            return
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _store(platform: Platform) -> Any:
    assert platform.store is not None
    return platform.store


async def test_powertools_batch_processor_gets_only_its_failed_record_back(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    log = tmp_path / "queue.jsonl"
    trigger = {
        "name": "jobs",
        "batch_size": 3,
        "batch_window": 0.2,  # the redelivered record waits this long for company
        "visibility_timeout": 0.5,
        "max_receive_count": 2,
    }
    app = app_dir(
        {"worker": {"handler": "queue_targets.batch", "events": [{"queue": trigger}]}},
        env={"QUEUE_LOG": str(log)},
    )
    async with run_platform(app, event_poll_s=0.05) as platform:
        queues = platform.queues
        assert queues is not None
        ids = {
            body: await queues.send("jobs", body, attributes={"color": "green"})
            for body in ("ok1", "bad", "ok2")
        }
        store = _store(platform)

        async def dead_lettered() -> bool:
            return len(await store.peek("dlq:queue:jobs")) == 1

        await _until(dead_lettered, "the failing record to reach the dead-letter queue")
        left = await store.peek("queue:jobs")
        [dead] = await store.peek("dlq:queue:jobs")

    seen = _lines(log)
    assert sorted((s["body"], s["receive_count"]) for s in seen) == [
        ("bad", 1),
        ("bad", 2),
        ("ok1", 1),
        ("ok2", 1),
    ], "the batch once, then only the failed record, until max_receive_count"
    assert {s["message_id"] for s in seen if s["body"] == "bad"} == {ids["bad"]}
    assert {s["color"] for s in seen} == {"green"}
    assert left == []
    assert dead.id == ids["bad"] and dead.receive_count == 2
    # Alone in its second batch, the record failing means every record failed: Powertools then
    # raises BatchProcessingError (as on AWS), a function error that fails the whole batch.
    assert dead.last_error["errorType"] == "BatchProcessingError"


async def test_a_published_message_reaches_both_subscribers_as_sns_events(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    log = tmp_path / "topic.jsonl"
    subscribe = {"topic": {"name": "news"}}
    app = app_dir(
        {
            "first": {"handler": "queue_targets.subscriber", "events": [subscribe]},
            "second": {"handler": "queue_targets.subscriber", "events": [subscribe]},
            "filtered": {
                "handler": "queue_targets.subscriber",
                "events": [{"topic": {"name": "news", "filter_policy": {"kind": ["weather"]}}}],
            },
        },
        env={"TOPIC_LOG": str(log)},
    )
    async with run_platform(app, event_poll_s=0.05) as platform:
        topics = platform.topics
        assert topics is not None
        message_id = await topics.publish(
            "news", "hello subscribers", subject="greeting", attributes={"kind": "sports"}
        )
        await _until(lambda: len(_lines(log)) == 2, "both subscribers to run")
        filtered = await _store(platform).peek("sub:news:svc.filtered")

    seen = sorted(_lines(log), key=lambda s: s["function"])
    assert [s["function"] for s in seen] == ["svc.first", "svc.second"]
    for s in seen:
        assert (s["message_id"], s["message"], s["subject"], s["kind"]) == (
            message_id,
            "hello subscribers",
            "greeting",
            "sports",
        )
        assert s["topic_arn"].endswith(":news")
    assert seen[0]["request_id"] != seen[1]["request_id"]
    assert filtered == [], "the filter policy kept the message from the third subscriber"
