"""`lamina simulate` as a user runs it: replay a CSV trace, write a synthetic one, and get a
clear error naming the file and line for a bad trace or an unknown policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lamina.cli import app

TRACE = """function,timestamp,duration,memory
a,0,10,100
b,0,5,200
b,2,5,200
a,310,10,100
a,1520,10,100
"""


@pytest.fixture
def run() -> CliRunner:
    return CliRunner()


def test_json_figures_per_policy_match_the_hand_computed_replay(
    run: CliRunner, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    result = run.invoke(
        app, ["simulate", str(trace), "-p", "fixed:10m", "-p", "fixed:1m", "--json"]
    )
    assert result.exit_code == 0, result.output
    ten, one = (json.loads(line) for line in result.output.splitlines())
    # see tests/unit/scaling/test_scaling_simulate.py: a has 2 cold of 3, b 1 of 2
    assert ten == {
        "policy": "fixed:10m",
        "functions": 2,
        "invocations": 5,
        "cold_starts": 3,
        "cold_pct_p50": 50.0,
        "cold_pct_p75": 66.667,
        "cold_pct_p90": 66.667,
        "cold_pct_p99": 66.667,
        "idle_gb_s": round(210_000 / 1024, 3),
    }
    # one minute: a is cold 3 of 3 (60 s idle twice), b 1 of 2 (60 s idle after)
    assert (one["policy"], one["cold_starts"]) == ("fixed:1m", 4)
    assert one["idle_gb_s"] == round((60 * 100 * 2 + 60 * 200) / 1024, 3)


def test_the_table_compares_fixed_ten_minutes_with_hybrid_by_default(
    run: CliRunner, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    result = run.invoke(app, ["simulate", str(trace)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.strip()]
    assert any(r[:4] == ["fixed:10m", "5", "3", "50.0"] for r in rows), result.output
    assert any(r[0] == "hybrid" for r in rows), result.output
    assert "cold % p75" in result.output and "idle GB·s" in result.output


def test_generate_writes_the_same_trace_for_the_same_seed_and_it_replays(
    run: CliRunner, tmp_path: Path
) -> None:
    paths = [tmp_path / "one.csv", tmp_path / "two.csv"]
    for path in paths:
        args = ["simulate", "--generate", str(path), "--functions", "20", "--hours", "2"]
        result = run.invoke(app, [*args, "--seed", "4"])
        assert result.exit_code == 0, result.output
        assert f"of 20 functions to {path}" in result.output
    assert paths[0].read_text() == paths[1].read_text()
    assert paths[0].read_text().startswith("function,timestamp,duration,memory\n")
    replayed = run.invoke(app, ["simulate", str(paths[0]), "-p", "hybrid", "--json"])
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.output)["invocations"] == len(paths[0].read_text().splitlines()) - 1


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("fn,ts\n", [], "trace.csv:1: expected the header function,timestamp,duration,memory"),
        (TRACE + "a,x,1,128\n", [], "trace.csv:7: timestamp: expected a number >= 0, got 'x'"),
        (TRACE + "a,1,1\n", [], "trace.csv:7: expected 4 columns, got 3"),
        (TRACE, ["-p", "fixed:10x"], "--policy: expected 'hybrid' or 'fixed:DURATION'"),
    ],
    ids=["wrong header", "timestamp not a number", "short row", "unknown policy"],
)
def test_a_bad_trace_or_policy_exits_2_naming_where(
    run: CliRunner, tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(content)
    result = run.invoke(app, ["simulate", str(trace), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()).replace(f"{tmp_path}/", "")


def test_without_a_trace_or_generate_it_says_what_to_give(run: CliRunner) -> None:
    result = run.invoke(app, ["simulate"])
    assert result.exit_code == 2
    assert "give a trace CSV to replay, or --generate OUT.csv to write one" in result.output


def test_help_shows_an_example(run: CliRunner) -> None:
    result = run.invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example: lamina simulate --generate trace.csv" in result.output
