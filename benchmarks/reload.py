"""Hot reload (`lamina dev`): how soon an edit serves, and how fast its first request is.

    python benchmarks/reload.py              # 20 edits of a hello function, prints a table
    python benchmarks/reload.py --edits 50 --markdown

A real platform with the real file watcher; each round rewrites the hello handler's file and
measures, from the moment the file is written:
- reload: until the reloader reports the service reloaded (watcher quiet time of 50 ms, a new
  zygote, one instance started from it, the pool switched);
- first request: the latency of the first request sent after that report (what the issue
  bounds: "well under 100 ms for a hello function");
- save to new code: until a client polling back to back first gets the new version.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from rich.console import Console
from rich.table import Table

from lamina.control import Platform, PlatformOptions
from lamina.control.dev import Reloader, ReloadReport
from lamina.manifest import load_app

MANIFEST = {
    "app": "bench",
    "services": {
        "greeter": {
            "path": "greeter",
            "functions": {
                "hello": {"handler": "handler.hello", "events": [{"http": "GET /hello"}]}
            },
        }
    },
}


def code(version: int) -> str:
    return f"def hello(event, context):\n    return {{'message': 'hello', 'version': {version}}}\n"


async def rounds(root: Path, edits: int) -> dict[str, list[float]]:
    (root / "greeter").mkdir(parents=True)
    (root / "greeter" / "handler.py").write_text(code(0))
    (root / "lamina.yaml").write_text(yaml.safe_dump(MANIFEST))
    platform = Platform(load_app(root), PlatformOptions(port=0, state_dir=root / ".lamina"))
    reports: list[ReloadReport] = []
    reloaded = asyncio.Event()

    def report(r: ReloadReport) -> None:
        reports.append(r)
        reloaded.set()

    reloader = Reloader(platform, report)
    times: dict[str, list[float]] = {"reload": [], "first request": [], "save to new code": []}
    await platform.start()
    try:
        reloader.start()
        await asyncio.wait_for(reloader.ready.wait(), 10)
        async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
            (await client.get("/hello")).raise_for_status()
            for version in range(1, edits + 1):
                # reload + first request after it
                reloaded.clear()
                saved = time.perf_counter()
                (root / "greeter" / "handler.py").write_text(code(version))
                await asyncio.wait_for(reloaded.wait(), 30)
                assert reports[-1].ok, reports[-1]
                times["reload"].append((time.perf_counter() - saved) * 1000)
                sent = time.perf_counter()
                response = await client.get("/hello")
                times["first request"].append((time.perf_counter() - sent) * 1000)
                assert response.json()["version"] == version, response.text
                # save to new code, polling: a separate edit so the poll starts at the save
                reloaded.clear()
                saved = time.perf_counter()
                (root / "greeter" / "handler.py").write_text(code(-version))
                while (await client.get("/hello")).json()["version"] != -version:
                    pass
                times["save to new code"].append((time.perf_counter() - saved) * 1000)
                await asyncio.wait_for(reloaded.wait(), 30)
    finally:
        await reloader.stop()
        await platform.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=20, help="edits measured (default 20)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lamina-reload-") as tmp:
        times = asyncio.run(rounds(Path(tmp), args.edits))
    rows = [
        (
            name,
            f"{statistics.median(v):.1f}",
            f"{sorted(v)[max(0, round(0.95 * len(v)) - 1)]:.1f}",
            f"{max(v):.1f}",
        )
        for name, v in times.items()
    ]
    header = ("measure (ms)", "median", "p95", "max")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    table = Table(title=f"hot reload of a hello function, {args.edits} edits")
    for column in header:
        table.add_column(column, justify="right" if column != header[0] else "left")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
