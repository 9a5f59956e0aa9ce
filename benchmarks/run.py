"""Lamina's core benchmarks, in one run: warm path against bare uvicorn, with recording
(invocation records, logs and metrics) on and off for a no-op function and one that prints a
line per request (each the mean of `--pairs` runs, on and off alternating, each pair with a run
of the floor, bare uvicorn, beside them); a noisy neighbour (hello at one connection, alone
and while another function keeps both cores busy, on Lamina and on the floor); and cold starts
(fork from the zygote) against spawning a fresh interpreter.

    python benchmarks/run.py                 # everything, prints a table
    python benchmarks/run.py --markdown      # the same as a Markdown table for docs/benchmarks.md
    python benchmarks/run.py --only neighbour --duration 5   # one part (warm, neighbour, cold)

Needs `wrk` on PATH (Debian: apt-get install wrk). Every server runs on 127.0.0.1 and every
load is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

HERE = Path(__file__).parent
console = Console(stderr=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {deadline_s} s")


@contextmanager
def process(args: list[str], **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` until the block ends (output discarded unless `stdout`/`stderr` say where);
    then SIGTERM, and SIGKILL if it has not exited within 30 s."""
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.DEVNULL)
    proc = subprocess.Popen(args, **kwargs)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Running(NamedTuple):
    gateway: str
    admin: str
    token: str
    pid: int  # the platform's process (its children: zygotes; theirs: instances)


@contextmanager
def lamina_platform(*extra: str, src: Path | None = None) -> Iterator[Running]:
    """`lamina up` on a copy of the bench app; yields its URLs, admin token and pid. With
    `src`, the `lamina` package is imported from that folder (another checkout's `src/`)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app"
        shutil.copytree(HERE / "app", app)
        port = free_port()
        admin = free_port()
        cmd = [
            sys.executable,
            "-m",
            "lamina",
            "up",
            str(app),
            "--port",
            str(port),
            "--admin-port",
            str(admin),
            "--log-level",
            "WARNING",
            *extra,
        ]
        env = None
        if src is not None:
            path = [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        with process(cmd, env=env) as proc:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/hello")
            token = (app / ".lamina" / "admin-token").read_text().strip()
            yield Running(url, f"http://127.0.0.1:{admin}", token, proc.pid)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def p99(samples: list[float]) -> float:
    """The 99th percentile of `samples`, interpolated between the two highest of 50 or so.
    (`statistics.quantiles`' default method extrapolates past the highest: with 50 samples its
    p99 was above their maximum.)"""
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def wrk(url: str, connections: int, duration_s: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out, re.M)
        lat[pct] = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": lat["50"],
        "p99_ms": lat["99"],
        "errors": float(errors.group(1)) if errors else 0,
    }


@contextmanager
def bare_uvicorn(*extra: str) -> Iterator[str]:
    """The floor (`bare_uvicorn.py`, `extra` its options) until the block ends; yields its URL."""
    port = free_port()
    with process([sys.executable, str(HERE / "bare_uvicorn.py"), str(port), *extra]):
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/hello")
        yield url


def _floor(connections: int, duration_s: int, *extra: str) -> dict[str, float]:
    with bare_uvicorn(*extra) as url:
        wrk(f"{url}/hello", connections, 2)  # warm-up
        return wrk(f"{url}/hello", connections, duration_s)


Run = dict[str, float]  # one wrk run: rps, p50_ms, p99_ms, errors
Measured = dict[str, Run]  # benchmark name -> the mean of its runs


FLOOR = "bare uvicorn (in-process handler)"


def warm(
    connections: int, duration_s: int, pairs: int = 3
) -> tuple[Measured, dict[str, list[Run]]]:
    """The mean of each benchmark's runs, and the runs themselves.

    The floor and the three Lamina platforms (recording on, off, and on with granian) are all
    up at once and their runs take turns: in each pair, a run of the floor, then recording on
    and off, the order reversed every other pair (floor, on, off, off, on, floor, ...). A drift
    of the machine between runs then lands on both sides of each comparison, and each Lamina
    run has a floor run beside it (`ratios`). (Started one after another, a platform per pair,
    the pairs of one run spread from 2% to 36% on a noisy machine; with the floor measured
    only before and after the pairs, a drift during them moved every ratio.) An idle platform
    takes no CPU: its instances and writer wait in poll(), the floor in epoll."""
    variants = {
        "on": (),
        "off (--no-record)": ("--no-record",),
        "on, --http granian": ("--http", "granian"),
    }
    runs: dict[str, list[Run]] = {}
    with ExitStack() as stack:
        floor = stack.enter_context(bare_uvicorn())
        gateways = {
            name: stack.enter_context(lamina_platform(*extra)).gateway
            for name, extra in variants.items()
        }
        wrk(f"{floor}/hello", connections, 2)  # warm-up
        for path, what in (("hello", "no-op"), ("logline", "prints a line")):
            for gateway in gateways.values():
                wrk(f"{gateway}/{path}", connections, 3)  # warm-up: scale out to the load
            order: list[str] = []
            for i in range(pairs):
                pair = [FLOOR, "on", "off (--no-record)"]
                order += pair if i % 2 == 0 else pair[::-1]
                if i < 2:  # the granian front twice, in between
                    order.append("on, --http granian")
            for name in order:
                if name == FLOOR:
                    runs.setdefault(FLOOR, []).append(
                        wrk(f"{floor}/hello", connections, duration_s)
                    )
                    continue
                runs.setdefault(f"Lamina, {what}, recording {name}", []).append(
                    wrk(f"{gateways[name]}/{path}", connections, duration_s)
                )
    results = {FLOOR: _mean(runs[FLOOR])}
    # uvicorn as it starts by default, printing a line per request (to /dev/null here): a
    # floor that, like Lamina with recording on, keeps a trace of every request.
    results["bare uvicorn, access log on (its default)"] = _floor(
        connections, duration_s, "--access-log"
    )
    for recording in variants:  # the table's order: on, off, granian; no-op first in each
        for what in ("no-op", "prints a line"):
            name = f"Lamina, {what}, recording {recording}"
            results[name] = _mean(runs[name])
    return results, runs


def _mean(measured: list[Run]) -> Run:
    return {key: statistics.mean(m[key] for m in measured) for key in measured[0]}


def ratios(runs: dict[str, list[Run]]) -> dict[str, str]:
    """Each Lamina row's requests/s against the floor's run of the same pair (the no-op
    function's pairs, then the printing one's): their median, and each."""
    floors = runs[FLOOR]
    half = len(floors) // 2
    notes = {}
    for name, measured in runs.items():
        if name == FLOOR or "granian" in name:  # granian runs in two pairs only
            continue
        mine = floors[:half] if "no-op" in name else floors[half:]
        each = [m["rps"] / f["rps"] for m, f in zip(measured, mine, strict=True)]
        notes[name] = (
            f"against the floor's run of each pair: median {statistics.median(each):.2f}x "
            f"({', '.join(f'{r:.2f}' for r in each)})"
        )
    return notes


def _hello_beside_cpu(base: str, duration_s: int) -> tuple[Run, Run, float]:
    """hello at one connection: alone, then while `cpu` is loaded at 32 connections (its
    req/s the third value)."""
    wrk(f"{base}/hello", 1, 2)  # warm-up
    alone = wrk(f"{base}/hello", 1, duration_s)
    hog = subprocess.Popen(
        ["wrk", "-t1", "-c32", f"-d{duration_s + 4}s", f"{base}/cpu"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)  # the cpu function scales out, both cores fill
        beside = wrk(f"{base}/hello", 1, duration_s)
    finally:
        out = hog.communicate()[0]
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return alone, beside, float(match.group(1)) if match else float("nan")


def neighbour(duration_s: int) -> list[tuple[str, Run, str, str]]:
    """A no-op function's latency while another function keeps both cores busy, on the floor
    (one process: hello waits behind the CPU-bound requests on its event loop) and on Lamina
    (each function's instances are processes of their own, in a session of their own)."""
    results: list[tuple[str, Run, str, str]] = []
    with bare_uvicorn() as url:
        floor = _hello_beside_cpu(url, duration_s)
    with lamina_platform() as running:
        lamina = _hello_beside_cpu(running.gateway, duration_s)
    for name, (alone, beside, cpu_rps) in (("bare uvicorn", floor), ("Lamina", lamina)):
        results.append((f"{name}: hello alone, 1 connection", alone, "", ""))
        results.append(
            (
                f"{name}: hello, 1 connection, while cpu is loaded (32 connections)",
                beside,
                f"p50 {beside['p50_ms'] / alone['p50_ms']:.1f}x of alone",
                f"cpu served {cpu_rps:.0f} req/s meanwhile",
            )
        )
    return results


def recording_cost(results: Measured, runs: dict[str, list[Run]]) -> dict[str, str]:
    """The share of requests/s that records, logs and metrics cost, per function: from the
    means, the median pair (one disturbed run moves it less), and each pair of runs (the
    spread shows the machine's noise)."""
    notes = {}
    for what in ("no-op", "prints a line"):
        on, off = (f"Lamina, {what}, recording {r}" for r in ("on", "off (--no-record)"))
        per_pair = [
            (1 - a["rps"] / b["rps"]) * 100 for a, b in zip(runs[on], runs[off], strict=True)
        ]
        notes[on] = (
            f"recording costs {(1 - results[on]['rps'] / results[off]['rps']) * 100:.1f}% "
            f"(median pair {statistics.median(per_pair):.1f}%; pairs: "
            f"{', '.join(f'{c:.1f}%' for c in per_pair)})"
        )
    return notes


def _wait_zero(client: httpx.Client, admin: str, token: str, function_id: str) -> None:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        status = client.get(f"{admin}/status", headers={"Authorization": f"Bearer {token}"}).json()
        fn = next(f for f in status["functions"] if f["id"] == function_id)
        if fn["instances"] == 0 and fn["starting"] == 0:
            return
        time.sleep(0.002)
    raise RuntimeError(f"{function_id} did not scale to zero")


def _records(
    client: httpx.Client, admin: str, token: str, function_id: str, count: int
) -> list[dict[str, Any]]:
    """The last `count` invocation records of a function, once the recorder has written them
    all (it flushes every second; 5 s at most)."""
    end = time.monotonic() + 5
    while True:
        records: list[dict[str, Any]] = client.get(
            f"{admin}/invocations",
            params={"function": function_id, "limit": count},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        if len(records) >= count or time.monotonic() > end:
            return records
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux; none once it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _smaps_kb(pid: int, *fields: str) -> int:
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(fields):
                total += int(line.split()[1])
    return total


def _uss_kb(pid: int) -> int:
    """Unique memory (private pages) of a process, from /proc/PID/smaps_rollup."""
    return _smaps_kb(pid, "Private_Clean:", "Private_Dirty:")


def _pss_kb(pid: int) -> int:
    """Proportional memory: private pages, plus each shared page divided by its sharers."""
    return _smaps_kb(pid, "Pss:")


def _name(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def _is_zygote(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return b"lamina.runtime.zygote" in f.read()


def idle_memory(running: Running, client: httpx.Client) -> dict[str, list[float]]:
    """USS (MB) of every zygote with its spare and of each idle warm `hello` instance, after
    some requests. A spare is a child of the zygote named `lamina-spare`."""
    for _ in range(200):
        client.get(f"{running.gateway}/hello")
    time.sleep(1)  # idle: every instance back in its wait, every zygote's spare forked
    zygotes = [z for z in children(running.pid) if _is_zygote(z)]
    spares = {z: [c for c in children(z) if _name(c) == "lamina-spare"] for z in zygotes}
    per_zygote = {z: [c for c in children(z) if c not in spares[z]] for z in zygotes}
    instances = [child for z in zygotes for child in per_zygote[z]]
    busy_zygote = max(per_zygote, key=lambda z: len(per_zygote[z]))  # hello's (it has instances)
    return {
        "idle warm instance (hello), USS": [_uss_kb(p) / 1024 for p in per_zygote[busy_zygote]],
        # The spare shares the zygote's pages: neither has them as its own (USS), so the pair
        # is measured by PSS, which splits what they share between them.
        "zygote and its spare (all a scaled-to-zero function costs), PSS": [
            sum(_pss_kb(p) for p in (z, *spares[z])) / 1024 for z in zygotes if not per_zygote[z]
        ],
        "spare (a forked child waiting to become the next instance), USS": [
            _uss_kb(p) / 1024 for z in zygotes for p in spares[z]
        ],
        "instances measured": [float(len(instances))],
    }


async def _burst(url: str, n: int) -> tuple[list[float], int]:
    async def one(client: httpx.AsyncClient) -> tuple[float, bool]:
        started = time.perf_counter()
        response = await client.get(url)
        return (time.perf_counter() - started) * 1000, response.status_code == 200

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        results = await asyncio.gather(*(one(client) for _ in range(n)))
    return [t for t, _ in results], sum(1 for _, ok in results if not ok)


IDLE_S = 0.1  # the "after idle" cold starts wait this long first: nothing runs meanwhile


def _timed_get(client: httpx.Client, url: str, idle_s: float = 0.0) -> float:
    """Milliseconds for one GET of `url` (asserted 200), after `idle_s` of idle."""
    if idle_s:
        time.sleep(idle_s)
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return elapsed


def cold(runs: int) -> tuple[dict[str, list[float]], dict[str, str], dict[str, list[float]]]:
    """Cold-start samples (ms), notes per row, and idle memory (MB)."""
    samples: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    with (
        lamina_platform() as running,
        httpx.Client() as client,
        Progress(console=console) as bar,
    ):
        gateway, admin, token = running.gateway, running.admin, running.token
        # A warm request is what a cold start is compared with: back to back, and after the
        # same idle moment as the "after idle" cold starts (waking an idle machine costs too).
        warm_ms = [_timed_get(client, f"{gateway}/hello") for _ in range(max(runs, 50))]
        warm_idle_ms = [_timed_get(client, f"{gateway}/hello", IDLE_S) for _ in range(20)]
        samples["warm request (hello), for reference"] = warm_ms
        samples[f"warm request (hello) after {IDLE_S * 1000:.0f} ms idle"] = warm_idle_ms
        for name, fid in (
            ("hello", "bench.cold_hello"),
            ("heavy (pydantic + httpx)", "bench.cold_heavy"),
        ):
            path = "/cold/hello" if name == "hello" else "/cold/heavy"
            client.get(f"{gateway}{path}")  # the first instance teaches the zygote what to preload
            for idle_s, warm_ref in ((0.0, warm_ms), (IDLE_S, warm_idle_ms)):
                after = f", after {idle_s * 1000:.0f} ms idle" if idle_s else ""
                task = bar.add_task(f"cold starts: {name}{after}", total=runs)
                times = []
                for _ in range(runs):
                    _wait_zero(client, admin, token, fid)
                    times.append(_timed_get(client, f"{gateway}{path}", idle_s))
                    bar.advance(task)
                key = f"Lamina fork from zygote: {name}{after}"
                samples[key] = times
                records = _records(client, admin, token, fid, runs)
                inits = [r["init_ms"] for r in records if r.get("init_ms") is not None]
                over = [t - statistics.median(warm_ref) for t in times]
                notes[key] = (
                    f"minus a warm request: p50 {statistics.median(over):.2f} ms, "
                    f"p99 {p99(over):.2f} ms, max {max(over):.2f} ms"
                    + (f"; Init Duration p50 {statistics.median(inits):.2f} ms" if inits else "")
                )
        burst_ms: list[float] = []
        failed = 0
        task = bar.add_task("bursts of 100 on a scaled-to-zero function", total=3)
        for _ in range(3):
            _wait_zero(client, admin, token, "bench.burst")
            times, errors = asyncio.run(_burst(f"{gateway}/burst", 100))
            burst_ms += times
            failed += errors
            bar.advance(task)
        samples["100 concurrent requests at zero instances (3 bursts)"] = burst_ms
        notes["100 concurrent requests at zero instances (3 bursts)"] = f"{failed} failed"
        memory = idle_memory(running, client)
    svc = HERE / "app" / "services" / "bench"
    for name, module in (("hello", "hello"), ("heavy (pydantic + httpx)", "heavy")):
        code = (
            f"import sys; sys.path.insert(0, {str(svc)!r}); "
            f"import lamina.runtime.instance, {module}; {module}.handler({{}}, None)"
        )
        times = []
        for _ in range(min(runs, 20)):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append((time.perf_counter() - started) * 1000)
        samples[f"fresh interpreter (spawn): {name}"] = times
    return samples, notes, memory


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured load run")
    parser.add_argument("--cold-runs", type=int, default=50)
    parser.add_argument("--only", choices=["warm", "neighbour", "cold"])
    parser.add_argument(
        "--pairs", type=int, default=3, help="recording on/off run pairs per function"
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None and args.only != "cold":
        sys.exit("wrk is not installed: apt-get install wrk")
    rows: list[list[str]] = []
    if args.only in (None, "warm"):
        console.print(f"warm path: wrk, {args.connections} connections, {args.duration} s per run")
        res, runs = warm(args.connections, args.duration, args.pairs)
        base = res[FLOOR]["rps"]
        notes = recording_cost(res, runs)
        paired = ratios(runs)
        for name, r in res.items():
            rows.append(
                [
                    f"warm: {name}",
                    f"{r['rps']:.0f} req/s",
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    f"{r['rps'] / base:.2f}x of bare uvicorn",
                    "; ".join(
                        filter(
                            None,
                            [f"{r['errors']:.0f} errors", notes.get(name), paired.get(name)],
                        )
                    ),
                ]
            )
    if args.only in (None, "neighbour"):
        console.print("noisy neighbour: hello at 1 connection while cpu is loaded at 32")
        for name, r, ratio, note in neighbour(args.duration):
            rows.append(
                [
                    f"neighbour: {name}",
                    f"{r['rps']:.0f} req/s",
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    ratio,
                    f"{r['errors']:.0f} errors" + (f"; {note}" if note else ""),
                ]
            )
    if args.only in (None, "cold"):
        console.print(f"cold starts: {args.cold_runs} runs per function, each from zero instances")
        samples, cold_notes, memory = cold(args.cold_runs)
        medians = {name: statistics.median(times) for name, times in samples.items()}
        for name, times in samples.items():
            kind = name.split(": ", 1)[-1]
            spawn = medians.get(f"fresh interpreter (spawn): {kind}")
            ratio = (
                f"{spawn / medians[name]:.1f}x faster than spawn"
                if name.startswith("Lamina") and spawn
                else ""
            )
            rows.append(
                [
                    f"cold: {name}",
                    f"n={len(times)}",
                    f"{medians[name]:.2f}",
                    f"{p99(times):.2f}",
                    ratio,
                    cold_notes.get(name, ""),
                ]
            )
        for name, values in memory.items():
            if name == "instances measured" or not values:
                continue
            rows.append(
                [
                    f"idle memory: {name}",
                    f"n={len(values)}",
                    f"{statistics.median(values):.2f} MB",
                    f"max {max(values):.2f} MB",
                    "",
                    "proportional memory: the pair's own pages and the libraries' share"
                    if name.endswith("PSS")
                    else "unique memory (private pages): what stopping the process frees",
                ]
            )
    headers = ["benchmark", "throughput / runs", "p50 ms", "p99 ms", "ratio", "notes"]
    print_table(headers, rows, markdown=args.markdown)


def print_table(headers: list[str], rows: list[list[str]], *, markdown: bool) -> None:
    """The results as a table (or Markdown, for docs/benchmarks.md), then the machine."""
    if markdown:
        print("| " + " | ".join(headers) + " |")
        print("|" + "---|" * len(headers))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        table = Table(*headers)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    print(json.dumps({"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
