"""Queue and topic triggers on the real platform with real functions: Powertools' SQS
BatchProcessor gets only its failed record back; a topic reaches its two subscribers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import client_for, jsonl, run_platform, until

from lamina.control import Platform


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

        await until(dead_lettered, "the failing record to reach the dead-letter queue")
        left = await store.peek("queue:jobs")
        [dead] = await store.peek("dlq:queue:jobs")

    seen = jsonl(log)
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
        await until(lambda: len(jsonl(log)) == 2, "both subscribers to run")
        filtered = await _store(platform).peek("sub:news:svc.filtered")

    seen = sorted(jsonl(log), key=lambda s: s["function"])
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


async def test_function_code_sends_and_publishes_with_the_lamina_module(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    log = tmp_path / "messaging.jsonl"
    app = app_dir(
        {
            "produce": {"handler": "messaging.produce"},
            "nowhere": {"handler": "messaging.send_to_nowhere"},
            "consume": {
                "handler": "messaging.consume",
                "events": [{"queue": "orders"}, {"topic": "shipped"}],
            },
        },
        env={"MESSAGING_LOG": str(log)},
    )
    async with run_platform(app, event_poll_s=0.05) as platform, client_for(platform) as client:
        produced = await client.post(
            "/2015-03-31/functions/svc.produce/invocations", json={"order": 42}
        )
        await until(lambda: len(jsonl(log)) == 2, "the queue and topic deliveries")
        refused = await client.post("/2015-03-31/functions/svc.nowhere/invocations", json={})
    ids = produced.json()
    by_source = {entry["source"]: entry for entry in jsonl(log)}
    assert by_source["sqs"] == {
        "source": "sqs",
        "body": {"order": 42},
        "id": ids["sent"],
        "kind": "book",
    }
    assert by_source["sns"] == {
        "source": "sns",
        "message": "order 42",
        "subject": "Shipped",
        "id": ids["published"],
    }
    error = refused.json()
    assert refused.headers["x-amz-function-error"] == "Unhandled"
    assert "no-such-queue" in error["errorMessage"]
    assert "orders" in error["errorMessage"], "the error names the queues that exist"
