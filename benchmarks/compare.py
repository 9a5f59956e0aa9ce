"""Lamina against its peers, in one run on this machine: the same three handlers behind each
server, loaded by wrk with keep-alive connections at several concurrencies.

    python benchmarks/compare.py                    # every peer, 10 s per cell (~15 minutes)
    python benchmarks/compare.py --quick            # a smoke run, 1 s per cell (~3 minutes)
    python benchmarks/compare.py --only lamina,uvicorn --duration 5

Handlers (benchmarks/app/services/bench): a no-op `hello`, `io` (sleeps 20 ms with
time.sleep, as a Lambda handler would) and `cpu` (about 5 ms of pure-Python work, calibrated
once at the start and handed to every server as BENCH_CPU_LOOPS). Servers: Lamina (`lamina
up`), bare uvicorn calling the handler in-process (the floor; and again with uvicorn's default
access log on), serverless-offline (serverless
v3, Python handlers in a python3 child process, no Docker), Google's functions-framework (its
default server), `chalice local` and Ray Serve (one replica, its HTTP proxy). The peers are
installed by this script into benchmarks/.peers/ (never into Lamina's environment).

Each server's three answers are checked once before it is loaded; a server that cannot be
installed, started or answer correctly gets a row saying why. Writes compare.md and PNG plots
(latency CDFs at 32 connections, throughput bars) to docs/benchmarks/ (--out). Needs wrk
(Debian: apt-get install wrk), and matplotlib for the plots (pip install -e ".[bench]").
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import loadgen
import peers
import report
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from run import free_port

HERE = Path(__file__).parent
sys.path.insert(0, str(peers.HANDLERS))
import busy  # noqa: E402  (the CPU handler's work, to calibrate and to check answers)

console = Console(stderr=True)
PATHS = {"hello": "/hello", "io": "/io", "cpu": "/cpu"}
START_S = {"ray": 60, "serverless-offline": 10}  # rough start-up times, for the estimate


@dataclass(frozen=True, slots=True)
class Run:
    """What one run measured, and under which conditions."""

    cells: list[report.Cell]
    loops: int  # the CPU handler's work
    cpu_ms: float  # what that work took here
    load_before: float  # 1-minute load average when the run started
    versions: dict[str, str]  # peer package -> installed version


def time_work(loops: int) -> float:
    """What `loops` of the CPU handler's work take here: the fastest of 15 runs (ms), the one
    least disturbed by whatever else this machine runs."""
    times = []
    for _ in range(15):
        started = time.perf_counter()
        busy.work(loops)
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def calibrate(target_ms: float = 5.0) -> tuple[int, float]:
    """Loops of the CPU handler's work that take about `target_ms` here, and what they take."""
    loops = 10_000
    for _ in range(3):
        loops = max(1, round(loops * target_ms / time_work(loops)))
    return loops, time_work(loops)


def check_answers(url: str, loops: int) -> None:
    """Each handler's answer once: status 200, the body it returns, and io takes >= 20 ms."""
    expected = {
        "hello": {"message": "hello"},
        "io": {"message": "slept 20 ms"},
        "cpu": {"message": "worked", "result": busy.work(loops)},
    }
    with httpx.Client(timeout=30) as client:
        for handler, path in PATHS.items():
            started = time.perf_counter()
            response = client.get(url + path)
            took_ms = (time.perf_counter() - started) * 1000
            try:
                body = response.json()
            except ValueError:
                body = response.text
            if response.status_code != 200 or body != expected[handler]:
                raise peers.PeerError(
                    f"GET {path} answered {response.status_code} {body!r}, "
                    f"expected 200 {expected[handler]!r}"
                )
            if handler == "io" and took_ms < 20:
                raise peers.PeerError(f"GET /io took {took_ms:.1f} ms, less than its 20 ms sleep")


def install(chosen: list[peers.Peer], progress: Progress) -> dict[str, str]:
    """Install the chosen peers; for each one that failed, why it cannot run."""
    keys = [p.key for p in chosen]
    python_keys = [k for k in keys if k in peers.PYTHON_PEERS]
    steps: list[tuple[list[str], Callable[[], None]]] = []
    if python_keys:
        steps.append((python_keys, functools.partial(peers.install_python, python_keys)))
    if "serverless-offline" in keys:
        steps.append((["serverless-offline"], peers.install_node))
    failed: dict[str, str] = {}
    for group, step in steps:
        task = progress.add_task(f"installing {', '.join(group)} into benchmarks/.peers", total=1)
        try:
            step()
        except peers.PeerError as e:
            failed.update({k: f"install failed: {e}".splitlines()[0] for k in group})
            console.print(f"[red]{e}")
        progress.advance(task)
    return failed


def unmeasured(peer: peers.Peer, args: argparse.Namespace, reason: str) -> list[report.Cell]:
    return [
        report.Cell(peer.key, peer.label, handler, n, None, reason)
        for handler in args.handlers
        for n in args.concurrency
    ]


def measure_peer(
    peer: peers.Peer, args: argparse.Namespace, loops: int, progress: Progress, task: TaskID
) -> list[report.Cell]:
    """Start the peer, check its answers, then load each handler at each concurrency."""
    cells = []
    progress.update(task, description=f"{peer.label}: starting")
    with peer.start(free_port()) as url:
        check_answers(url, loops)
        for handler in args.handlers:
            for n in args.concurrency:
                progress.update(task, description=f"{peer.label}: {handler}, c={n}")
                loadgen.run(f"{url}{PATHS[handler]}", n, args.warmup)
                load = loadgen.run(f"{url}{PATHS[handler]}", n, args.duration)
                cells.append(report.Cell(peer.key, peer.label, handler, n, load))
                progress.advance(task)
    return cells


def measure(args: argparse.Namespace, loops: int) -> list[report.Cell]:
    """Every chosen peer's cells, measured or saying why not."""
    cells: list[report.Cell] = []
    per_peer = len(args.handlers) * len(args.concurrency)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn())
    columns += (MofNCompleteColumn(), TimeElapsedColumn())  # type: ignore[assignment]
    with Progress(*columns, console=console) as progress:
        failed = install(args.peers, progress)
        task = progress.add_task("load", total=per_peer * len(args.peers))
        for peer in args.peers:
            done = progress.tasks[task].completed
            try:
                if peer.key in failed:
                    raise peers.PeerError(failed[peer.key])
                cells += measure_peer(peer, args, loops, progress, task)
            except (peers.PeerError, loadgen.WrkError, httpx.HTTPError) as e:
                console.print(f"[red]{peer.label}: {e}")
                cells += unmeasured(peer, args, str(e).splitlines()[0])
                progress.update(task, completed=done + per_peer)
    return cells


def write(args: argparse.Namespace, run: Run, plots: list[Path]) -> str:
    """compare.md's text: how it was run, the table, the derived figures and the plots."""
    cells = run.cells
    versions = ", ".join(f"{name} {v}" for name, v in run.versions.items()) or "none"
    lines = [
        "# Lamina against its peers",
        "",
        f"Written by `python benchmarks/compare.py {' '.join(sys.argv[1:])}`".rstrip() + " on "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, 1-minute load average {run.load_before:.2f} at the "
        f"start and {os.getloadavg()[0]:.2f} at the end. wrk, one thread, keep-alive "
        f"connections, {args.duration} s per cell after a {args.warmup} s warm-up. CPU handler: "
        f"{run.loops} loops, {run.cpu_ms:.2f} ms here. Peers: {versions}.",
        "",
        report.markdown(cells),
    ]
    added = report.gateway_added(cells)
    if added:
        lines += ["Gateway-added latency at concurrency 1 (Lamina minus the floor):", ""]
        lines += [f"- {h}: p50 {p50:+.2f} ms, p99 {p99:+.2f} ms" for h, (p50, p99) in added.items()]
        lines.append("")
    for path in plots:
        lines += [f"![{path.stem}]({path.name})", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    keys = [p.key for p in peers.ALL]
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 s per cell after 1 s warm-up"
    )
    parser.add_argument("--duration", type=int, help="seconds per measured cell (default 10)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per cell (default 2)")
    parser.add_argument("--only", help=f"comma-separated servers, of: {','.join(keys)}")
    parser.add_argument("--concurrency", default="1,32,256", help="connections (default 1,32,256)")
    parser.add_argument("--handlers", default="hello,io,cpu", help="default hello,io,cpu")
    parser.add_argument("--cpu-loops", type=int, help="the CPU handler's work (default: calibrate)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "benchmarks")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = parser.parse_args(argv)
    args.duration = args.duration or (1 if args.quick else 10)
    args.warmup = args.warmup or (1 if args.quick else 2)
    only = args.only.split(",") if args.only else keys
    unknown = sorted(set(only) - set(keys))
    if unknown:
        parser.error(
            f"--only: unknown server(s) {', '.join(unknown)}; choose from {', '.join(keys)}"
        )
    args.peers = [p for p in peers.ALL if p.key in only]
    args.handlers = args.handlers.split(",")
    if not set(args.handlers) <= set(PATHS):
        parser.error(f"--handlers: choose from {', '.join(PATHS)}, got {','.join(args.handlers)}")
    try:
        args.concurrency = [int(n) for n in args.concurrency.split(",")]
    except ValueError:
        parser.error(f"--concurrency: comma-separated integers, got {args.concurrency!r}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        loadgen.require_wrk()
    except loadgen.WrkError as e:
        sys.exit(f"error: {e}")
    if not args.no_plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.exit('error: the plots need matplotlib: pip install -e ".[bench]" (or --no-plots)')
    cells_n = len(args.peers) * len(args.handlers) * len(args.concurrency)
    estimate = cells_n * (args.duration + args.warmup) + sum(
        START_S.get(p.key, 3) for p in args.peers
    )
    console.print(
        f"{len(args.peers)} servers x {len(args.handlers)} handlers x {len(args.concurrency)} "
        f"concurrencies = {cells_n} cells, {args.duration} s each after {args.warmup} s warm-up: "
        f"about {estimate / 60:.0f} min (plus a first install of the peers, ~2 min)"
    )
    load_before = os.getloadavg()[0]
    if args.cpu_loops:
        loops, cpu_ms = args.cpu_loops, time_work(args.cpu_loops)
    else:
        loops, cpu_ms = calibrate()
    os.environ["BENCH_CPU_LOOPS"] = str(loops)  # every server started from here inherits it
    console.print(f"CPU handler: {loops} loops = {cpu_ms:.2f} ms here")
    started = time.monotonic()
    cells = measure(args, loops)
    run = Run(cells, loops, cpu_ms, load_before, peers.versions([p.key for p in args.peers]))
    args.out.mkdir(parents=True, exist_ok=True)
    plots = [] if args.no_plots else report.plot(cells, args.out)
    text = write(args, run, plots)
    (args.out / "compare.md").write_text(text)
    print(text)
    took = (time.monotonic() - started) / 60
    console.print(f"wrote {args.out / 'compare.md'} and {len(plots)} plots; took {took:.1f} min")


if __name__ == "__main__":
    main()
