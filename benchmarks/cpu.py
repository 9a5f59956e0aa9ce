"""Where a request's CPU goes: each kind of Lamina process's CPU time per request under load,
read from /proc (Linux), and how much of the time the platform's thread waited for a core.

    python benchmarks/cpu.py                           # 3 runs of 5 s on /hello, 32 connections
    python benchmarks/cpu.py --runs 6 -- --no-record   # after --: options for `lamina up`
    python benchmarks/cpu.py --path /logline --markdown

It starts `lamina up` on a copy of the bench app (as run.py does), warms the route up, then
for each run reads every process of the platform's tree, loads the route with `wrk`, and reads
them again. Per request it reports the CPU (user + system) of:
- the platform's event-loop thread, the one that serves every request (its other threads
  apart);
- the instances, the zygotes and their spares, and the telemetry writer;
and the instances' voluntary context switches per request (how often an instance went to
sleep waiting for its next invocation), and the share of the run the event-loop thread spent
running and waiting on a run queue (`/proc/PID/task/PID/schedstat`): time it was ready but
another task had its core. Requests/s move by a third between runs on a shared machine; CPU
per request moves less, and says which process a change made cheaper. Needs `wrk` and Linux.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from loadgen import run as wrk
from run import children, console, lamina_platform, print_table

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
EVENT_LOOP = "platform: event-loop thread"
OTHER_THREADS = "platform: other threads"
KINDS = (
    EVENT_LOOP,
    OTHER_THREADS,
    "instances",
    "zygotes",
    "spares",
    "telemetry writer",
)


@dataclass(frozen=True)
class Proc:
    """What a process's /proc files say, for classifying it."""

    pid: int
    ppid: int
    comm: str
    cmdline: str


def cpu_ticks(stat: str) -> int:
    """User plus system time, in clock ticks, from a /proc/.../stat line. (The command name,
    in parentheses, may hold spaces and parentheses: the fields count from the last ')'.)"""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of the line


def voluntary_switches(status: str) -> int:
    """`voluntary_ctxt_switches` from a /proc/.../status text."""
    for line in status.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def schedstat(text: str) -> tuple[int, int]:
    """(ns on a CPU, ns waiting on a run queue) from a /proc/.../schedstat line."""
    running, waiting, _ = text.split()
    return int(running), int(waiting)


def kinds(procs: Mapping[int, Proc], root: int) -> dict[int, str]:
    """Each process of the tree under `root` (the platform) by kind: the zygotes are the
    platform's children that run `lamina.runtime.zygote`; their children are spares (named
    `lamina-spare` until they become instances) and instances; the writer is the child that
    runs `lamina.store._writer`. Other children of the platform (a Ray node, ...) are left out."""
    found: dict[int, str] = {}
    for proc in procs.values():
        if proc.ppid == root:
            if "lamina.runtime.zygote" in proc.cmdline:
                found[proc.pid] = "zygotes"
            elif "lamina.store._writer" in proc.cmdline:
                found[proc.pid] = "telemetry writer"
    for proc in procs.values():
        if found.get(proc.ppid) == "zygotes":
            found[proc.pid] = "spares" if proc.comm == "lamina-spare" else "instances"
    return found


@dataclass(frozen=True)
class Snapshot:
    ticks: Counter[str]  # kind -> CPU ticks
    instance_switches: int
    loop_run_ns: int
    loop_wait_ns: int
    at_s: float  # when it was taken (monotonic): the event-loop shares are of the time between


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:  # the process is gone
        return None


def snapshot(root: int) -> Snapshot:
    """The platform's tree as /proc shows it now."""
    procs: dict[int, Proc] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        stat, cmdline = _read(f"/proc/{pid}/stat"), _read(f"/proc/{pid}/cmdline")
        if stat is None or cmdline is None:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        procs[pid] = Proc(pid, ppid, comm, cmdline.replace("\0", " "))
        todo += children(pid)
    ticks: Counter[str] = Counter()
    switches = 0
    for pid, kind in kinds(procs, root).items():
        stat = _read(f"/proc/{pid}/stat")
        if stat is not None:
            ticks[kind] += cpu_ticks(stat)
        if kind == "instances":
            switches += voluntary_switches(_read(f"/proc/{pid}/status") or "")
    for task in os.listdir(f"/proc/{root}/task"):
        stat = _read(f"/proc/{root}/task/{task}/stat")
        if stat is not None:
            ticks[EVENT_LOOP if int(task) == root else OTHER_THREADS] += cpu_ticks(stat)
    run_ns, wait_ns = schedstat(_read(f"/proc/{root}/task/{root}/schedstat") or "0 0 0")
    return Snapshot(ticks, switches, run_ns, wait_ns, time.monotonic())


@dataclass(frozen=True)
class Measured:
    rps: float
    us_per_request: dict[str, float]  # kind -> CPU µs per request
    sleeps_per_request: float  # instances' voluntary context switches
    loop_running: float  # share of the run
    loop_waiting: float


def measure(before: Snapshot, after: Snapshot, requests: int, seconds: float) -> Measured:
    """One run's figures from the snapshots around it; `requests` in `seconds` are wrk's."""
    per = 1e6 * TICK_S / max(requests, 1)
    window_s = after.at_s - before.at_s  # wrk's run, and its start and end
    return Measured(
        rps=requests / seconds if seconds else 0.0,
        us_per_request={k: (after.ticks[k] - before.ticks[k]) * per for k in KINDS},
        sleeps_per_request=(after.instance_switches - before.instance_switches) / max(requests, 1),
        loop_running=(after.loop_run_ns - before.loop_run_ns) / 1e9 / window_s,
        loop_waiting=(after.loop_wait_ns - before.loop_wait_ns) / 1e9 / window_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--path", default="/hello", help="route of the bench app to load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("up", nargs="*", help="after --: options for `lamina up`")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("cpu.py reads /proc: Linux only")
    runs: list[Measured] = []
    with lamina_platform(*args.up) as platform:
        url = f"{platform.gateway}{args.path}"
        wrk(url, args.connections, 3)  # warm-up: the function scales out to the load
        for i in range(args.runs):
            console.print(f"run {i + 1} of {args.runs}: {args.duration} s on {args.path}")
            before = snapshot(platform.pid)
            load = wrk(url, args.connections, args.duration)
            after = snapshot(platform.pid)
            runs.append(measure(before, after, load.requests, load.duration_s))
    rps = [m.rps for m in runs]
    rows = [["requests/s", *(f"{v:.0f}" for v in rps), f"{statistics.median(rps):.0f}"]]
    for kind in KINDS:
        each = [m.us_per_request[kind] for m in runs]
        median = statistics.median(each)
        rows.append([f"CPU µs per request: {kind}", *(f"{v:.1f}" for v in each), f"{median:.1f}"])
    for label, name, fmt in (
        ("instance sleeps per request", "sleeps_per_request", "{:.2f}"),
        ("event-loop thread: share of the run on a core", "loop_running", "{:.1%}"),
        ("event-loop thread: share waiting for a core", "loop_waiting", "{:.1%}"),
    ):
        values = [getattr(m, name) for m in runs]
        rows.append(
            [label, *(fmt.format(v) for v in values), fmt.format(statistics.median(values))]
        )
    headers = ["", *(f"run {i + 1}" for i in range(len(runs))), "median"]
    print_table(headers, rows, markdown=args.markdown)


if __name__ == "__main__":
    main()
