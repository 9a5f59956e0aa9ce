"""`lamina export sam`: the file it writes, the report it prints, and its errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lamina.cli.main import app
from lamina.manifest import load_app
from lamina.manifest.export import HEADER, VERDICTS, export_environ, export_sam
from lamina.manifest.sam import format_report, load_sam

EXAMPLES = Path(__file__).parents[3] / "examples"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    """A copy of examples/hello, so that exports into the app folder stay in tmp_path."""
    return Path(shutil.copytree(EXAMPLES / "hello", tmp_path / "hello"))


def test_export_writes_template_yaml_in_the_app_and_prints_the_report(hello: Path) -> None:
    code, out, _ = run("export", "sam", str(hello))
    assert code == 0
    template = hello / "template.yaml"
    expected = export_sam(load_app(hello), template)
    assert template.read_text() == expected.text
    lines = out.splitlines()
    assert lines[0] == f"wrote {template} (app hello)"
    assert lines[1:] == format_report(expected.report, VERDICTS)
    assert lines[-1] == "7 translated, 1 approximated, 0 dropped"
    assert load_app(hello).name == "hello"  # lamina.yaml still wins over template.yaml
    assert set(load_sam(template).spec.functions()) == {
        "hello.GreeterHello",
        "hello.GreeterEcho",
        "hello.GreeterSlow",
    }


def test_export_writes_where_o_says_and_to_stdout_with_a_dash(tmp_path: Path) -> None:
    target = tmp_path / "build" / "sam" / "template.yaml"
    code, out, _ = run("export", "sam", str(EXAMPLES / "shop"), "-o", str(target))
    assert code == 0, out
    assert target.read_text().startswith(HEADER)
    assert "translated   services.notifications.functions.send_emails.events[0].queue" in out
    code, out, err = run("export", "sam", str(EXAMPLES / "hello"), "-o", "-")
    assert code == 0
    app = load_app(EXAMPLES / "hello", environ=export_environ({}))
    assert out == export_sam(app, EXAMPLES / "hello" / "template.yaml").text
    assert "HttpApi route ANY /echo/{proxy+} (payload 1.0)" in err


def test_a_runtime_can_be_given_and_must_be_python(hello: Path) -> None:
    code, _, _ = run("export", "sam", str(hello), "--runtime", "python3.12")
    assert code == 0
    assert "    Runtime: python3.12\n" in (hello / "template.yaml").read_text()
    code, _, err = run("export", "sam", str(hello), "--runtime", "nodejs20.x")
    assert code == 2
    assert "--runtime 'nodejs20.x': expected a Python runtime like python3.12" in err


def test_a_template_it_did_not_write_is_replaced_only_with_force(hello: Path) -> None:
    mine = hello / "template.yaml"
    mine.write_text("Transform: AWS::Serverless-2016-10-31\nResources: {}\n")
    code, _, err = run("export", "sam", str(hello))
    assert code == 1
    assert "template.yaml exists and was not written by lamina export; use --force" in err
    assert mine.read_text().startswith("Transform")
    assert run("export", "sam", str(hello), "--force")[0] == 0
    assert mine.read_text().startswith(HEADER)
    assert run("export", "sam", str(hello))[0] == 0  # its own output is replaced freely


def test_the_manifest_itself_is_never_the_output(hello: Path) -> None:
    code, _, err = run("export", "sam", str(hello), "-o", str(hello / "lamina.yaml"))
    assert code == 2
    assert "that is the app's own manifest" in err


def test_a_folder_without_a_manifest_is_a_clear_error(tmp_path: Path) -> None:
    code, out, err = run("export", "sam", str(tmp_path))
    assert code == 2
    assert f"no lamina.yaml in {tmp_path}" in err
    assert out == ""
    assert not (tmp_path / "template.yaml").exists()


def test_an_invalid_manifest_names_its_file_line_and_key(hello: Path) -> None:
    manifest = hello / "lamina.yaml"
    manifest.write_text(manifest.read_text().replace("memory: 256", "memory: 64"))
    code, _, err = run("export", "sam", str(hello))
    assert code == 2
    assert (
        "lamina.yaml:17: services.greeter.functions.echo.memory: expected an integer "
        "128-10240 (MB), got 64" in err
    )
    assert not (hello / "template.yaml").exists()


def test_help_shows_an_example() -> None:
    code, out, _ = run("export", "sam", "--help")
    assert code == 0
    assert "Example: lamina export sam examples/shop -o build/shop/template.yaml" in out
