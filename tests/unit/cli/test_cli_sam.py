"""`lamina sam check`: the report as a user reads it, as JSON, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lamina.cli.main import app
from lamina.manifest.sam import format_report, load_sam

TEMPLATE = Path(__file__).parents[2] / "fixtures" / "sam" / "queue-schedule" / "template.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


def test_check_prints_every_report_line() -> None:
    code, out, _ = run("sam", "check", str(TEMPLATE), "--param", "Stage=prod")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"app queue-schedule: {TEMPLATE}"
    expected = format_report(load_sam(TEMPLATE, parameters={"Stage": "prod"}).report)
    assert lines[1:] == expected
    assert "run          Resources.ProcessOrderFunction.Properties.MemorySize: 1024 MB" in lines


def test_check_json_lists_functions_and_entries() -> None:
    code, out, _ = run("sam", "check", str(TEMPLATE), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["app"] == "queue-schedule"
    assert report["functions"] == [
        "queue-schedule.AlertFunction",
        "queue-schedule.ProcessOrderFunction",
        "queue-schedule.TickFunction",
    ]
    entry = next(e for e in report["report"] if e["path"] == "Resources.OrdersQueue")
    assert entry == {
        "path": "Resources.OrdersQueue",
        "verdict": "run",
        "note": "AWS::SQS::Queue -> queue OrdersQueue",
        "line": 32,
    }


def test_check_exits_2_naming_the_bad_parameter() -> None:
    code, _, err = run("sam", "check", str(TEMPLATE), "--param", "Stage=qa")
    assert code == 2
    assert "Parameters.Stage: parameter 'Stage' is 'qa'; expected one of dev, prod" in err
    code, _, err = run("sam", "check", str(TEMPLATE), "--param", "Stage")
    assert code == 2
    assert "--param 'Stage': expected NAME=VALUE" in err


def test_up_refuses_an_unknown_parameter_before_starting(tmp_path: Path) -> None:
    code, _, err = run("up", str(TEMPLATE), "--param", "Nope=1", "--port", "0")
    assert code == 2
    assert "--param Nope: the template has no parameter 'Nope'" in err
