"""Nothing accepted is lost: events acknowledged with 202 survive SIGKILL of the platform and
of the instances running them, on SQLite and on PostgreSQL. Duplicates are counted and shown."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from harness import lamina_up, write_app

EVENTS = 2000


def _deliveries(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    return Counter(line.split()[0] for line in path.read_text().splitlines() if line.strip())


def _accept_events(gateway_url: str, count: int, workers: int = 8) -> set[str]:
    """Send `count` Event invocations; return the request ids the platform acknowledged.
    (Threads with one keep-alive connection each: far faster here than one async client.)"""

    def send_share(share: range) -> list[str]:
        ids = []
        with httpx.Client(base_url=gateway_url, timeout=30) as client:
            for n in share:
                response = client.post(
                    "/2015-03-31/functions/svc.record/invocations",
                    json={"n": n},
                    headers={"X-Amz-Invocation-Type": "Event"},
                )
                assert response.status_code == 202, response.text
                ids.append(response.headers["x-amzn-requestid"])
        return ids

    with ThreadPoolExecutor(workers) as pool:
        shares = pool.map(send_share, (range(w, count, workers) for w in range(workers)))
        return {rid for share in shares for rid in share}


def _wait_for(predicate: Callable[[], bool], what: str, deadline_s: float) -> None:
    """A bounded poll: the effect happens in other processes (the handler writes a file)."""
    end = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < end, f"timed out after {deadline_s} s waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgres"])
def store_args(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "sqlite":
        return []
    url: str = request.getfixturevalue("postgres_schema_url")
    return ["--store", url]


@pytest.mark.timeout(120)
def test_accepted_events_survive_sigkill_of_the_platform_and_of_instances(
    tmp_path: Path, store_args: list[str]
) -> None:
    deliveries = tmp_path / "deliveries.txt"
    slow = tmp_path / "slow"
    slow.touch()
    app = write_app(
        tmp_path / "app",
        {
            "record": {
                "handler": "crash_targets.record",
                "timeout": 2,
                "max_instances": 2,
                "async": {"max_retries": 2, "backoff": 0.05},
            }
        },
        env={"DELIVERIES_FILE": str(deliveries), "SLOW_FILE": str(slow)},
    )
    t0 = time.monotonic()
    with lamina_up(app, *store_args) as first:
        accepted = _accept_events(first.gateway_url, EVENTS)
        print(f"accepted in {time.monotonic() - t0:.1f}s")
        assert len(accepted) == EVENTS
        _wait_for(lambda: len(_deliveries(deliveries)) >= 10, "some deliveries", 30)
        # Kill instances in the middle of invocations, then the platform itself.
        for proc in first.tree():
            if "lamina.runtime.zygote" not in " ".join(proc.cmdline()):
                proc.send_signal(signal.SIGKILL)
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
    delivered_before_restart = len(_deliveries(deliveries))
    assert EVENTS - delivered_before_restart >= 1000, "thousands of events must be pending"
    slow.unlink()

    t1 = time.monotonic()
    with lamina_up(app, *store_args):
        _wait_for(lambda: set(_deliveries(deliveries)) >= accepted, "every event", 90)
    print(f"delivered the rest in {time.monotonic() - t1:.1f}s")
    seen = _deliveries(deliveries)
    assert set(seen) == accepted, "nothing accepted is lost and nothing unknown is delivered"
    duplicates = sum(count - 1 for count in seen.values())
    print(
        f"{EVENTS} accepted; {delivered_before_restart} delivered before SIGKILL; "
        f"{duplicates} duplicate deliveries after restart (at-least-once)"
    )
