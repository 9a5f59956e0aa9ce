"""benchmarks/cpu.py's reading of /proc: which process is which, and the figures per request."""

from __future__ import annotations

from collections import Counter

import pytest
from cpu import (
    EVENT_LOOP,
    KINDS,
    TICK_S,
    Proc,
    Snapshot,
    cpu_ticks,
    kinds,
    measure,
    schedstat,
    voluntary_switches,
)

# A /proc/PID/stat line whose command name holds a space and a parenthesis; utime 1500 and
# stime 300 are its 14th and 15th fields.
STAT = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 900 0 0 0 1500 300 0 0 20 0 3 0 17 0 0"


def test_cpu_ticks_are_user_plus_system_time_counted_from_the_last_parenthesis() -> None:
    assert cpu_ticks(STAT) == 1800


def test_voluntary_switches_and_schedstat_are_read_from_their_files() -> None:
    status = "Name:\tpython\nvoluntary_ctxt_switches:\t812\nnonvoluntary_ctxt_switches:\t9\n"
    assert voluntary_switches(status) == 812
    assert voluntary_switches("Name:\tgone\n") == 0
    assert schedstat("9100000000 450000000 20000\n") == (9_100_000_000, 450_000_000)


def test_the_tree_is_told_apart_zygotes_their_spares_and_instances_and_the_writer() -> None:
    platform = 100
    procs = {
        p.pid: p
        for p in (
            Proc(platform, 1, "python", "python -m lamina up app"),
            Proc(101, platform, "python", "python -m lamina.runtime.zygote "),
            Proc(102, platform, "python", "python -c import sys; from lamina.store._writer …"),
            Proc(103, platform, "raylet", "raylet --node"),  # not Lamina's own: left out
            Proc(201, 101, "python", "python -m lamina.runtime.zygote "),  # an instance
            Proc(202, 101, "lamina-spare", "python -m lamina.runtime.zygote "),
            Proc(301, 103, "python", "ray worker"),
        )
    }
    assert kinds(procs, platform) == {
        101: "zygotes",
        102: "telemetry writer",
        201: "instances",
        202: "spares",
    }


def test_each_kind_s_cpu_is_divided_by_the_requests_and_the_loop_s_time_by_the_run() -> None:
    before = Snapshot(Counter({EVENT_LOOP: 1000, "instances": 500}), 40, 0, 0, 100.0)
    after = Snapshot(
        Counter({EVENT_LOOP: 1900, "instances": 950, "telemetry writer": 100}),
        40 + 9000,
        4_750_000_000,
        250_000_000,
        105.0,  # 5 s after `before`
    )
    m = measure(before, after, requests=10_000, seconds=5.0)
    tick_us = 1e6 * TICK_S
    assert m.rps == 2000
    assert m.us_per_request[EVENT_LOOP] == pytest.approx(900 * tick_us / 10_000)
    assert m.us_per_request["instances"] == pytest.approx(450 * tick_us / 10_000)
    assert m.us_per_request["spares"] == 0
    assert set(m.us_per_request) == set(KINDS)
    assert m.sleeps_per_request == pytest.approx(0.9)
    assert (m.loop_running, m.loop_waiting) == (pytest.approx(0.95), pytest.approx(0.05))
