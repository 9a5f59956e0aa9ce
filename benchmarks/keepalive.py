"""Predictive keep-alive against fixed keep-alive, on a synthetic Azure-Functions-shaped trace.

    pip install -e ".[bench]"                      # matplotlib, for the plot
    python benchmarks/keepalive.py                 # 300 functions, 72 h, seed 1: table + plot
    python benchmarks/keepalive.py --markdown      # the table as Markdown, for docs/benchmarks.md
    python benchmarks/keepalive.py --functions 500 --hours 168 --seed 2

It generates a trace with `lamina.scaling.synthetic.generate` (the same as
`lamina simulate --generate`), replays it with `lamina.scaling.simulate.replay` (the same as
`lamina simulate`, running the invoker's keep-alive code) under fixed keep-alive of 1, 2, 5,
10, 20, 30, 60 and 120 minutes and under the hybrid histogram policy (`keep_alive: auto`),
prints cold-start % by function percentile and idle memory-time, and writes a Pareto chart
(cold-start % of the 75th-percentile function against idle memory-time) to
docs/benchmarks/keepalive-pareto.png.

Goal (issue 6, reported here, never asserted in tests): against fixed 10-minute keep-alive, at
equal or lower idle memory-time, at least 2x fewer cold starts for the 75th-percentile function.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from lamina.cli._common import out
from lamina.cli.simulate import PERCENTILES, results_table
from lamina.scaling.keepalive import HybridSpec
from lamina.scaling.simulate import FixedKeepAlive, Policy, SimulationResult, replay
from lamina.scaling.synthetic import generate

FIXED_MINUTES = (1, 2, 5, 10, 20, 30, 60, 120)
ROOT = Path(__file__).resolve().parent.parent
PLOT = ROOT / "docs" / "benchmarks" / "keepalive-pareto.png"


def markdown(results: list[SimulationResult]) -> str:
    head = ["policy", "cold starts", *(f"cold % p{p}" for p in PERCENTILES), "idle GB·h"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [
            r.policy,
            f"{r.cold_starts:,} of {r.invocations:,}",
            *(f"{r.cold_pct_at(p):.1f}" for p in PERCENTILES),
            f"{r.idle_gb_s / 3600:,.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: list[SimulationResult], path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit('matplotlib is missing: pip install -e ".[bench]"')
    fixed = [r for r in results if r.policy.startswith("fixed")]
    hybrid = [r for r in results if r.policy == "hybrid"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120, sharex=True)
    for ax, percentile in zip(axes, (75, 50), strict=True):
        xs = [r.idle_gb_s / 3600 for r in fixed]
        ys = [r.cold_pct_at(percentile) for r in fixed]
        ax.plot(xs, ys, "o-", color="tab:blue", label="fixed keep-alive")
        for r, x, y in zip(fixed, xs, ys, strict=True):
            label = r.policy.removeprefix("fixed:")
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
        for r in hybrid:
            ax.plot(
                r.idle_gb_s / 3600,
                r.cold_pct_at(percentile),
                "*",
                color="tab:red",
                markersize=14,
                label="hybrid histogram (keep_alive: auto)",
            )
        ax.set_xlabel("idle memory-time (GB·h kept loaded, not running)")
        ax.set_ylabel(f"cold starts of the {percentile}th-percentile function (%)")
        ax.set_ylim(-3, 108)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", type=int, default=300)
    parser.add_argument("--hours", type=float, default=72)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=PLOT, help=f"PNG to write (default {PLOT})")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()

    started = time.perf_counter()
    trace = generate(args.functions, args.hours, random.Random(args.seed))
    policies: list[Policy] = [FixedKeepAlive(m * 60.0) for m in FIXED_MINUTES]
    policies.append(HybridSpec())
    results = [replay(trace, policy) for policy in policies]
    elapsed = time.perf_counter() - started

    what = (
        f"{args.functions} functions, {args.hours:g} h, seed {args.seed}: "
        f"{len(trace):,} invocations"
    )
    if args.markdown:
        print(markdown(results))
    else:
        out.print(results_table(results))
    print(f"trace: {what}; generated and replayed in {elapsed:.1f} s")

    ten = next(r for r in results if r.policy == "fixed:10m")
    auto = next(r for r in results if r.policy == "hybrid")
    ratio = ten.cold_pct_at(75) / auto.cold_pct_at(75) if auto.cold_pct_at(75) else float("inf")
    memory = auto.idle_gb_s / ten.idle_gb_s
    met = ratio >= 2 and memory <= 1
    print(
        f"goal (vs fixed:10m, p75 function): {ratio:.1f}x fewer cold starts at "
        f"{memory:.2f}x the idle memory-time -> {'met' if met else 'NOT met'}"
    )
    title = f"Cold starts vs idle memory-time\nsynthetic Azure-2019-shaped trace: {what}"
    plot(results, args.plot, title)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
