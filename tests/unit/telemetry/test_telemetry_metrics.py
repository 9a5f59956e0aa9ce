"""Invocation records folded into Prometheus metrics, and the scrape-time snapshot rendered;
every test reads the exposition back with prometheus_client's own parser."""

from __future__ import annotations

import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lamina.store.types import InvocationRecord, InvocationRow, QueueStats, invocation_row
from lamina.telemetry.metrics import (
    DURATION_BUCKETS_S,
    InstanceCount,
    Metrics,
    RequestCount,
    Snapshot,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _record(
    fid: str = "svc.fn",
    *,
    status: str = "ok",
    trigger: str = "http",
    duration_ms: float = 2.0,
    cold: bool = False,
    init_ms: float | None = None,
    memory_mb: int = 128,
) -> InvocationRow:
    """A record as the recorder hands it to the metrics: a row."""
    billed = 0 if status == "throttled" else max(1, int(-(-duration_ms // 1)))
    return invocation_row(
        InvocationRecord(
            "rid", fid, trigger, 0, duration_ms, billed, init_ms, cold, memory_mb, None, status
        )
    )


def _scrape(metrics: Metrics, snapshot: Snapshot | None = None) -> Samples:
    text = metrics.render(snapshot or Snapshot(now_s=0.0)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def test_invocations_are_counted_by_function_status_and_trigger() -> None:
    metrics = Metrics()
    metrics.observe(
        [
            _record(),
            _record(),
            _record(status="error"),
            _record(trigger="queue"),
            _record("svc.other", trigger="invoke", status="timeout"),
        ],
    )
    metrics.observe([_record()])  # a second batch adds to the first
    samples = _scrape(metrics)
    total = "lamina_invocations_total"
    assert _value(samples, total, function="svc.fn", status="ok", trigger="http") == 3
    assert _value(samples, total, function="svc.fn", status="error", trigger="http") == 1
    assert _value(samples, total, function="svc.fn", status="ok", trigger="queue") == 1
    assert _value(samples, total, function="svc.other", status="timeout", trigger="invoke") == 1
    assert _value(samples, "lamina_invocation_duration_seconds_count", function="svc.fn") == 5


def test_a_throttled_invocation_counts_as_a_throttle_with_no_duration_and_no_bill() -> None:
    metrics = Metrics()
    metrics.observe([_record(status="throttled", duration_ms=0.0), _record()])
    samples = _scrape(metrics)
    assert _value(samples, "lamina_throttles_total", function="svc.fn") == 1
    throttled = {"function": "svc.fn", "status": "throttled", "trigger": "http"}
    assert _value(samples, "lamina_invocations_total", **throttled) == 1
    assert _value(samples, "lamina_invocation_duration_seconds_count", function="svc.fn") == 1
    assert _value(samples, "lamina_billed_gb_seconds_total", function="svc.fn") == pytest.approx(
        2 * 128 / 1024 / 1000  # the ok one's 2 ms at 128 MB
    )


def test_durations_fall_into_le_buckets_cumulatively() -> None:
    metrics = Metrics()
    # 1 ms sits exactly on the first bound ("less than or equal"), 3 ms in the 5 ms bucket,
    # 20 minutes past the last bound.
    metrics.observe([_record(duration_ms=ms) for ms in (1.0, 3.0, 3.0, 1_200_000.0)])
    samples = _scrape(metrics)
    bucket = "lamina_invocation_duration_seconds_bucket"
    assert _value(samples, bucket, function="svc.fn", le="0.001") == 1
    assert _value(samples, bucket, function="svc.fn", le="0.0025") == 1
    assert _value(samples, bucket, function="svc.fn", le="0.005") == 3
    assert _value(samples, bucket, function="svc.fn", le="900.0") == 3
    assert _value(samples, bucket, function="svc.fn", le="+Inf") == 4
    assert _value(
        samples, "lamina_invocation_duration_seconds_sum", function="svc.fn"
    ) == pytest.approx(1200.007)
    buckets = [le for (name, labels) in samples if name == bucket for k, le in labels if k == "le"]
    assert len(buckets) == len(DURATION_BUCKETS_S) + 1


def test_cold_starts_record_their_init_duration() -> None:
    metrics = Metrics()
    metrics.observe(
        [_record(cold=True, init_ms=150.0), _record(), _record("svc.b", cold=True, init_ms=40.0)]
    )
    samples = _scrape(metrics)
    assert _value(samples, "lamina_cold_starts_total", function="svc.fn") == 1
    assert _value(samples, "lamina_cold_starts_total", function="svc.b") == 1
    assert _value(samples, "lamina_init_duration_seconds_count", function="svc.fn") == 1
    assert _value(samples, "lamina_init_duration_seconds_sum", function="svc.fn") == 0.15
    assert _value(samples, "lamina_init_duration_seconds_bucket", function="svc.b", le="0.05") == 1


def test_a_batch_of_mixed_records_counts_as_the_same_records_one_at_a_time() -> None:
    # Durations on the bounds and between them, two functions, throttles and cold starts, in
    # one batch: folded at once (by columns) they must give what they give one by one.
    rng = random.Random(7)
    on_bounds = [bound * 1000 for bound in DURATION_BUCKETS_S]
    records = [
        _record(
            rng.choice(("svc.fn", "svc.other")),
            status=rng.choice(("ok", "ok", "error", "throttled")),
            trigger=rng.choice(("http", "queue")),
            duration_ms=rng.choice((*on_bounds, rng.uniform(0, 2000), 0.0)),
            cold=(cold := rng.random() < 0.2),
            init_ms=rng.choice((None, 10.0, 77.7)) if cold else None,
            memory_mb=rng.choice((128, 1024)),
        )
        for _ in range(600)
    ]
    batched, single = Metrics(), Metrics()
    batched.observe(records)
    for record in records:
        single.observe([record])
    by_batch, by_record = _scrape(batched), _scrape(single)
    assert by_batch.keys() == by_record.keys()
    for key, value in by_record.items():
        assert by_batch[key] == pytest.approx(value), key


def test_billed_gb_seconds_are_billed_ms_times_memory() -> None:
    metrics = Metrics()
    # 1000 invocations of 1 GB billed 1 ms each: exactly one GB-second, without float drift.
    metrics.observe([_record(duration_ms=0.4, memory_mb=1024)] * 1000)
    metrics.observe([_record("svc.big", duration_ms=2000.0, memory_mb=512)])
    samples = _scrape(metrics)
    assert _value(samples, "lamina_billed_gb_seconds_total", function="svc.fn") == 1.0
    assert _value(samples, "lamina_billed_gb_seconds_total", function="svc.big") == 1.0


def test_the_snapshot_shows_instances_requests_queues_and_dead_letters() -> None:
    metrics = Metrics()
    snapshot = Snapshot(
        now_s=1000.0,
        instances=[InstanceCount("svc.fn", live=3, busy=1), InstanceCount("svc.idle", 0, 0)],
        requests=[
            RequestCount("GET /users/{id}", 200, 7),
            RequestCount("GET /users/{id}", 502, 1),
            RequestCount("unmatched", 404, 2),
        ],
        queues=[
            QueueStats("queue:jobs", depth=4, visible=2, oldest_created_ms=990_500),
            QueueStats("async:svc.fn", depth=0, visible=0, oldest_created_ms=None),
            QueueStats("dlq:queue:jobs", depth=2, visible=2, oldest_created_ms=10),
        ],
    )
    samples = _scrape(metrics, snapshot)
    assert _value(samples, "lamina_instances", function="svc.fn", state="live") == 3
    assert _value(samples, "lamina_instances", function="svc.fn", state="busy") == 1
    assert _value(samples, "lamina_instances", function="svc.idle", state="live") == 0
    requests = "lamina_gateway_requests_total"
    assert _value(samples, requests, route="GET /users/{id}", status="200") == 7
    assert _value(samples, requests, route="GET /users/{id}", status="502") == 1
    assert _value(samples, requests, route="unmatched", status="404") == 2
    assert _value(samples, "lamina_queue_depth", queue="queue:jobs") == 4
    assert _value(samples, "lamina_queue_oldest_age_seconds", queue="queue:jobs") == 9.5
    assert _value(samples, "lamina_queue_depth", queue="async:svc.fn") == 0
    assert _value(samples, "lamina_queue_oldest_age_seconds", queue="async:svc.fn") == 0
    assert _value(samples, "lamina_dead_letters", source="queue:jobs") == 2
    assert ("lamina_queue_depth", (("queue", "dlq:queue:jobs"),)) not in samples


def test_records_and_lines_the_recorder_dropped_are_counted_and_absent_without_recording() -> None:
    samples = _scrape(Metrics(), Snapshot(now_s=0.0, telemetry_dropped=300))
    assert _value(samples, "lamina_telemetry_dropped_total") == 300
    assert "lamina_telemetry_dropped_total" not in _names(_scrape(Metrics(), Snapshot(now_s=0.0)))


def test_without_queue_stats_the_queue_metrics_are_left_out() -> None:
    samples = _scrape(Metrics(), Snapshot(now_s=0.0, queues=None))
    assert not {"lamina_queue_depth", "lamina_dead_letters"} & _names(samples)


def test_without_records_the_invocation_metrics_are_left_out() -> None:
    metrics = Metrics(invocations=False)
    metrics.observe([_record()])
    text = metrics.render(Snapshot(now_s=0.0, instances=[InstanceCount("svc.fn", 1, 0)])).decode()
    families = {f.name for f in text_string_to_metric_families(text)}
    assert "lamina_invocations" not in families
    assert "lamina_instances" in families


def test_every_agreed_metric_family_is_exposed_with_its_type() -> None:
    metrics = Metrics()
    metrics.observe([_record(cold=True, init_ms=5.0), _record(status="throttled")])
    text = metrics.render(Snapshot(now_s=0.0, queues=[], telemetry_dropped=0)).decode()
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types == {
        "lamina_invocations": "counter",
        "lamina_invocation_duration_seconds": "histogram",
        "lamina_init_duration_seconds": "histogram",
        "lamina_cold_starts": "counter",
        "lamina_throttles": "counter",
        "lamina_billed_gb_seconds": "counter",
        "lamina_instances": "gauge",
        "lamina_gateway_requests": "counter",
        "lamina_queue_depth": "gauge",
        "lamina_queue_oldest_age_seconds": "gauge",
        "lamina_dead_letters": "gauge",
        "lamina_telemetry_dropped": "counter",
    }
