"""The Ray executor against the local one, in one run on the same machine: warm requests/s and
p50/p99 through the gateway (wrk, many connections), Ray's per-call overhead (wrk with one
connection: each request waits for the previous one), and cold starts (a new instance per
request: a fork from the zygote locally, a new actor on Ray), and, to explain the overhead,
Ray alone: an empty call to an async actor, plain and as a streaming generator.

    python benchmarks/ray_executor.py              # prints a table
    python benchmarks/ray_executor.py --markdown   # the same, as Markdown for docs/benchmarks.md

Needs `wrk` on PATH (Debian: apt-get install wrk) and `lamina[ray]`. The Ray runs start a
private single-node Ray inside `lamina up` (`--executor ray`, `--ray-address local`). The
platforms run the app in benchmarks/app with the helpers of benchmarks/run.py.

(Not named ray.py: with benchmarks/ on sys.path, as the benchmark tests put it, that name
would shadow the `ray` package.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from run import _wait_zero, console, lamina_platform, p99, print_table, wrk

BACKENDS = {"local": (), "ray": ("--executor", "ray")}

# Ray alone, without Lamina: what an empty call to an async actor costs from an asyncio driver,
# as a plain method and as a streaming generator of one item (how Lamina calls an instance).
# Run in a child process, so that this process never holds a Ray driver of its own.
RAY_ALONE = """
import asyncio, json, statistics, sys, time
import ray

ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
         logging_level="ERROR")

@ray.remote
class Echo:
    async def call(self, message):
        return message

    async def stream(self, message):
        yield message

async def main(runs):
    echo = Echo.remote()
    message = {"request_id": "x" * 36, "payload": {"hello": "world"}}

    async def call():
        await echo.call.remote(message)

    async def stream():
        async for ref in echo.stream.options(num_returns="streaming").remote(message):
            await ref

    figures = {}
    for name, once in (("actor call", call), ("streaming actor call", stream)):
        for _ in range(50):
            await once()
        times = []
        for _ in range(runs):
            begun = time.perf_counter()
            await once()
            times.append((time.perf_counter() - begun) * 1000)
        q = statistics.quantiles(times, n=100, method="inclusive")
        figures[name] = {"p50_ms": statistics.median(times), "p99_ms": q[98], "runs": runs}
    print(json.dumps(figures))

asyncio.run(main(int(sys.argv[1])))
"""


def ray_alone(runs: int) -> dict[str, dict[str, float]]:
    """Ray's own cost of an empty actor call, measured in a child process."""
    done = subprocess.run(
        [sys.executable, "-c", RAY_ALONE, str(runs)], capture_output=True, text=True, check=True
    )
    figures: dict[str, dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def measure(
    backend: str, connections: int, duration_s: int, cold_runs: int
) -> dict[str, dict[str, float]]:
    """Warm, sequential and cold figures of one backend, on one platform."""
    results: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    with lamina_platform(*BACKENDS[backend]) as (gateway, admin, token, _pid):
        console.print(f"{backend}: platform ready in {time.perf_counter() - started:.1f} s")
        hello = f"{gateway}/hello"
        wrk(hello, connections, 5)  # warm-up: scale out to the load (Ray starts actors)
        results[f"warm, {connections} connections"] = wrk(hello, connections, duration_s)
        wrk(hello, 1, 2)
        results["sequential, 1 connection"] = wrk(hello, 1, duration_s)
        times = []
        with httpx.Client(timeout=60) as client:
            client.get(f"{gateway}/cold/hello")  # the code package is on the node, the zygote warm
            for _ in range(cold_runs):
                _wait_zero(client, admin, token, "bench.cold_hello")
                begun = time.perf_counter()
                response = client.get(f"{gateway}/cold/hello")
                times.append((time.perf_counter() - begun) * 1000)
                assert response.status_code == 200, response.text
        results["cold start (new instance per request)"] = {
            "rps": float("nan"),
            "p50_ms": statistics.median(times),
            "p99_ms": p99(times) if len(times) > 1 else times[0],
            "errors": 0.0,
            "runs": float(len(times)),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured load run")
    parser.add_argument("--cold-runs", type=int, default=20)
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls, Ray alone")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    os.chdir(Path(__file__).resolve().parent.parent)  # the platforms run from the repository root
    figures = {
        backend: measure(backend, args.connections, args.duration, args.cold_runs)
        for backend in BACKENDS
    }
    rows = []
    for what in figures["local"]:
        local, ray = figures["local"][what], figures["ray"][what]
        for backend, r in (("local", local), ("ray", ray)):
            cold = "runs" in r
            throughput = f"n={r['runs']:.0f}" if cold else f"{r['rps']:.0f} req/s"
            if backend == "local":
                ratio = ""
            elif cold:
                ratio = f"+{ray['p50_ms'] - local['p50_ms']:.1f} ms p50 on Ray"
            else:
                ratio = f"{ray['rps'] / local['rps']:.2f}x of local"
                if what.startswith("sequential"):
                    ratio += f"; +{ray['p50_ms'] - local['p50_ms']:.2f} ms per call (p50)"
            rows.append(
                [
                    f"{what}: {backend}",
                    throughput,
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    ratio,
                    "" if cold else f"{r['errors']:.0f} errors",
                ]
            )
    for what, r in ray_alone(args.calls).items():
        rows.append(
            [
                f"Ray alone: empty {what}",
                f"n={r['runs']:.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                "",
                "async actor, asyncio driver",
            ]
        )
    headers = ["benchmark", "throughput / runs", "p50 ms", "p99 ms", "Ray against local", "notes"]
    print_table(headers, rows, markdown=args.markdown)


if __name__ == "__main__":
    main()
