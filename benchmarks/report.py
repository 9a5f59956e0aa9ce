"""The comparison's results as a Markdown table, derived figures and PNG plots.

A `Cell` is one (server, handler, concurrency) measurement, or the reason it has none. Pure
functions turn cells into the table (with each cell's requests/s as a ratio of the floor's,
bare uvicorn, for the same handler and concurrency) and into the gateway-added latency at
concurrency 1 (Lamina minus the floor). `plot` draws latency CDFs and throughput bars with
matplotlib (the `bench` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadgen import Load

FLOOR = "uvicorn"
HANDLERS = {"hello": "no-op hello", "io": "I/O: sleeps 20 ms", "cpu": "CPU: ~5 ms of work"}
HEADERS = ["server", "handler", "concurrency", "req/s", "p50 ms", "p99 ms", "p99.9 ms"]
HEADERS += ["errors", "ratio to floor"]


@dataclass(frozen=True, slots=True)
class Cell:
    server: str  # a peer's key (peers.ALL)
    label: str  # its name in the table
    handler: str  # hello | io | cpu
    connections: int
    load: Load | None  # None when the server could not run; `note` says why
    note: str = ""


def ratio_to_floor(cells: Sequence[Cell]) -> dict[tuple[str, str, int], float]:
    """Each measured cell's req/s divided by the floor's for the same handler and concurrency."""
    floor = {
        (c.handler, c.connections): c.load.rps
        for c in cells
        if c.server == FLOOR and c.load is not None and c.load.rps > 0
    }
    return {
        (c.server, c.handler, c.connections): c.load.rps / floor[(c.handler, c.connections)]
        for c in cells
        if c.load is not None and (c.handler, c.connections) in floor
    }


def _errors(load: Load) -> str:
    if load.error_count == 0:
        return "0"
    kinds = ", ".join(f"{n} {kind}" for kind, n in load.errors.items() if n)
    return f"{load.error_count} ({kinds})"


def rows(cells: Sequence[Cell]) -> list[list[str]]:
    """The table's rows: one per measured cell, one per server that could not run."""
    ratios = ratio_to_floor(cells)
    out: list[list[str]] = []
    reported: set[str] = set()
    for c in cells:
        if c.load is None:
            if c.server not in reported:  # one row says why, not one per cell
                reported.add(c.server)
                out.append([c.label, "all", "-", "-", "-", "-", "-", "-", f"did not run: {c.note}"])
            continue
        if c.load.requests == 0:  # nothing answered: no latency to show, and not "0 errors"
            none = f"no request completed in {c.load.duration_s:.0f} s"
            out.append([c.label, c.handler, str(c.connections), "0", "-", "-", "-", none, "-"])
            continue
        ratio = ratios.get((c.server, c.handler, c.connections))
        out.append(
            [
                c.label,
                c.handler,
                str(c.connections),
                f"{c.load.rps:.0f}",
                f"{c.load.latency(50):.2f}",
                f"{c.load.latency(99):.2f}",
                f"{c.load.latency(99.9):.2f}",
                _errors(c.load),
                f"{ratio:.2f}x" if ratio is not None else "n/a (no floor)",
            ]
        )
    return out


def markdown(cells: Sequence[Cell]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += [
        "| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows(cells)
    ]
    return "\n".join(lines) + "\n"


def gateway_added(cells: Sequence[Cell]) -> dict[str, tuple[float, float]]:
    """Per handler, Lamina's p50 and p99 at concurrency 1 minus the floor's, in ms."""
    at_1 = {
        (c.server, c.handler): c.load for c in cells if c.connections == 1 and c.load is not None
    }
    added = {}
    for handler in HANDLERS:
        lamina, floor = at_1.get(("lamina", handler)), at_1.get((FLOOR, handler))
        if lamina is not None and floor is not None:
            added[handler] = (
                lamina.latency(50) - floor.latency(50),
                lamina.latency(99) - floor.latency(99),
            )
    return added


def plot(cells: Sequence[Cell], out: Path, cdf_connections: int = 32) -> list[Path]:
    """Latency CDFs per handler at `cdf_connections` and throughput bars; the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    measured = [c for c in cells if c.load is not None and c.load.requests > 0]
    written = []
    for handler, title in HANDLERS.items():
        chosen = [c for c in measured if c.handler == handler and c.connections == cdf_connections]
        if not chosen:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for c in chosen:
            assert c.load is not None
            ax.plot(
                [ms for _, ms in c.load.percentiles],
                [p for p, _ in c.load.percentiles],
                label=c.label,
            )
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("percentile of requests")
        ax.set_title(f"{title}: latency CDF at {cdf_connections} connections")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
        path = out / f"compare-cdf-{handler}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    servers = list(dict.fromkeys(c.label for c in measured))
    levels = sorted({c.connections for c in measured})
    if servers and levels:
        fig, axes = plt.subplots(1, len(HANDLERS), figsize=(5 * len(HANDLERS), 4.5), squeeze=False)
        width = 0.8 / len(servers)
        for ax, (handler, title) in zip(axes[0], HANDLERS.items(), strict=True):
            for i, label in enumerate(servers):
                rps = {
                    c.connections: c.load.rps
                    for c in measured
                    if c.label == label and c.handler == handler and c.load is not None
                }
                xs = [j + i * width for j in range(len(levels))]
                ax.bar(xs, [rps.get(n, 0) for n in levels], width, label=label)
            ax.set_xticks(
                [j + 0.4 - width / 2 for j in range(len(levels))], [f"c={n}" for n in levels]
            )
            ax.set_yscale("log")
            ax.set_ylabel("requests/s (log scale)")
            ax.set_title(title)
            ax.grid(True, axis="y", which="both", alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(servers), fontsize="small")
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        path = out / "compare-throughput.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written
