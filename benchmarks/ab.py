"""This checkout's Lamina against another commit of it, side by side: both platforms up at
once on copies of the bench app, `wrk` runs on each taking turns (the order within a pair
alternates, so neither always runs on a warmer machine), and the median of the pairs' ratios.
On a machine whose speed drifts by more than the change being measured, runs a minute apart
cannot be compared; a pair's two runs are seconds apart. On Linux it also reports the CPU
time per request of each platform's event-loop thread (the one that serves every request, from
its /proc schedstat), which moves less than requests/s and shows a change to that thread's work.

    python benchmarks/ab.py --base HEAD~1                 # 16 pairs of 8 s on /hello, c=32
    python benchmarks/ab.py --base main --path /logline --pairs 8 --markdown
    python benchmarks/ab.py --base v0.1 -- --no-record    # after --: options for both `lamina up`

The base commit is checked out into a temporary `git worktree` (removed afterwards) and its
`src/` put first on PYTHONPATH; this checkout runs from its own `src/`. Needs `wrk`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cpu import snapshot
from loadgen import Load
from loadgen import run as wrk
from rich.progress import Progress
from run import Running, console, lamina_platform, print_table

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Pair:
    base: Load
    tree: Load
    # CPU µs per request of each platform's event-loop thread over its run (None off Linux):
    # it moves less than requests/s, and shows a change to that thread's work
    base_loop_us: float | None = None
    tree_loop_us: float | None = None

    @property
    def ratio(self) -> float:
        return self.tree.rps / self.base.rps if self.base.rps else float("nan")

    @property
    def loop_ratio(self) -> float | None:
        """This checkout's event-loop CPU per request over the base's."""
        if self.base_loop_us is None or self.tree_loop_us is None or not self.base_loop_us:
            return None
        return self.tree_loop_us / self.base_loop_us


def tree_first(index: int) -> bool:
    """Whether pair `index` (from 0) loads this checkout first: every other pair."""
    return index % 2 == 0


def summary(pairs: Sequence[Pair]) -> dict[str, float]:
    """The median ratio (this checkout's req/s over the base's), its range, how many pairs
    this checkout won, and each side's median req/s, p99 and p99.9."""
    ratios = [p.ratio for p in pairs]
    loop = [r for r in (p.loop_ratio for p in pairs) if r is not None]
    return {
        "median_loop_ratio": statistics.median(loop) if loop else float("nan"),
        "base_loop_us": _median_of([p.base_loop_us for p in pairs]),
        "tree_loop_us": _median_of([p.tree_loop_us for p in pairs]),
        "median_ratio": statistics.median(ratios),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "won": sum(r > 1 for r in ratios),
        "base_rps": statistics.median(p.base.rps for p in pairs),
        "tree_rps": statistics.median(p.tree.rps for p in pairs),
        "base_p99": statistics.median(p.base.latency(99) for p in pairs),
        "tree_p99": statistics.median(p.tree.latency(99) for p in pairs),
        "base_p999": statistics.median(p.base.latency(99.9) for p in pairs),
        "tree_p999": statistics.median(p.tree.latency(99.9) for p in pairs),
    }


def _median_of(values: Sequence[float | None]) -> float:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else float("nan")


def loaded(
    platform: Running, url: str, connections: int, seconds: int
) -> tuple[Load, float | None]:
    """`wrk` on `url`, and the CPU µs per request the platform's event-loop thread spent
    meanwhile (from its schedstat: nanoseconds on a CPU; None where /proc has none)."""
    if not sys.platform.startswith("linux"):
        return wrk(url, connections, seconds), None
    before = snapshot(platform.pid)
    load = wrk(url, connections, seconds)
    after = snapshot(platform.pid)
    return load, (after.loop_run_ns - before.loop_run_ns) / 1000 / max(load.requests, 1)


def commit_of(ref: str) -> str | None:
    """The commit `ref` names in this repository, or None when it names none."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else None


@contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """`ref` checked out in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="lamina-ab-") as tmp:
        folder = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(folder), ref],
            check=True,
        )
        try:
            yield folder
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)],
                check=False,
            )


def measure(args: argparse.Namespace) -> list[Pair]:
    pairs = []
    with ExitStack() as stack:
        base_src = stack.enter_context(worktree(args.base)) / "src"
        console.print(f"[bold]starting[/] {args.base} and this checkout")
        base = stack.enter_context(lamina_platform(*args.up, src=base_src))
        tree = stack.enter_context(lamina_platform(*args.up, src=REPO / "src"))
        with Progress(console=console) as progress:
            task = progress.add_task(f"{args.pairs} pairs on {args.path}", total=args.pairs)
            for i in range(args.pairs):
                order = [tree, base] if tree_first(i) else [base, tree]
                runs = {
                    p.gateway: loaded(p, p.gateway + args.path, args.connections, args.duration)
                    for p in order
                }
                (base_load, base_us), (tree_load, tree_us) = runs[base.gateway], runs[tree.gateway]
                pairs.append(Pair(base_load, tree_load, base_us, tree_us))
                progress.advance(task)
    return pairs


def _us(value: float | None) -> str:
    return "" if value is None or value != value else f"{value:.1f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="the commit to compare against (git ref)")
    parser.add_argument("--pairs", type=int, default=16, help="pairs of runs (default 16)")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--path", default="/hello", help="route of the bench app to load")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("up", nargs="*", help="after --: options for both `lamina up`")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if commit_of(args.base) is None:
        parser.error(f"--base {args.base!r} names no commit of {REPO}")
    pairs = measure(args)
    rows = [
        [
            str(i + 1),
            f"{p.base.rps:.0f}",
            f"{p.tree.rps:.0f}",
            f"{p.ratio:.3f}",
            _us(p.base_loop_us),
            _us(p.tree_loop_us),
            "" if p.loop_ratio is None else f"{p.loop_ratio:.3f}",
        ]
        for i, p in enumerate(pairs)
    ]
    s = summary(pairs)
    rows.append(
        [
            "median",
            f"{s['base_rps']:.0f} (p99 {s['base_p99']:.2f}, p99.9 {s['base_p999']:.2f} ms)",
            f"{s['tree_rps']:.0f} (p99 {s['tree_p99']:.2f}, p99.9 {s['tree_p999']:.2f} ms)",
            f"{s['median_ratio']:.3f} (range {s['min_ratio']:.3f}-{s['max_ratio']:.3f}; "
            f"faster in {s['won']:.0f} of {len(pairs)})",
            _us(s["base_loop_us"]),
            _us(s["tree_loop_us"]),
            f"{s['median_loop_ratio']:.3f}",
        ]
    )
    headers = [
        "pair",
        f"{args.base} req/s",
        "this checkout req/s",
        "ratio",
        f"{args.base} loop µs/req",
        "this checkout loop µs/req",
        "loop ratio",
    ]
    print_table(headers, rows, markdown=args.markdown)


if __name__ == "__main__":
    main(sys.argv[1:])
