"""`lamina export sam`: write an app as an AWS SAM template, and report what was translated,
approximated or dropped."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from lamina.cli._common import err, fail, out
from lamina.errors import ManifestError

__all__ = ["export_app"]

SAM_EXAMPLE = (
    "Example: lamina export sam examples/shop -o build/shop/template.yaml "
    "&& cd build/shop && sam build && sam deploy --guided"
)
_RUNTIME = re.compile(r"^python3\.\d+$")

export_app = typer.Typer(
    help="Export an app to other platforms: an AWS SAM template that deploys it to AWS.",
    epilog=SAM_EXAMPLE,
    no_args_is_help=True,
)


@export_app.command(epilog=SAM_EXAMPLE)
def sam(
    app_dir: Annotated[
        Path, typer.Argument(help="Folder with lamina.yaml (or the file itself).")
    ] = Path("."),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Template file to write (default: APP_DIR/template.yaml; '-': standard output).",
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(help="Lambda runtime of every function (default: the Python running lamina)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite a file that lamina export did not write."),
    ] = False,
) -> None:
    """Write a SAM template.yaml that deploys the app to AWS: functions, the HTTP API with
    its routes and authorizers, queues, topics, schedules and DynamoDB tables for service
    tables. Then list each part as translated, approximated (and how) or dropped (and why)."""
    from lamina.manifest import load_app
    from lamina.manifest.export import HEADER, VERDICTS, export_environ, export_sam
    from lamina.manifest.sam import format_report

    if runtime is not None and not _RUNTIME.match(runtime):
        raise fail(f"--runtime {runtime!r}: expected a Python runtime like python3.12", 2)
    try:
        app = load_app(app_dir, environ=export_environ(os.environ))
    except ManifestError as exc:
        raise fail(str(exc), 2) from None
    to_stdout = output == Path("-")
    target = app.root / "template.yaml" if output is None or to_stdout else output
    if target.absolute() == app.file:
        raise fail(f"{target}: that is the app's own manifest; choose another file with -o", 2)
    exported = export_sam(app, target, runtime=runtime)
    report = format_report(exported.report, VERDICTS)
    if to_stdout:
        print(exported.text, end="")
        for row in report:
            err.print(row, highlight=False, markup=False, soft_wrap=True)
        return
    if target.is_file() and not force and not _generated(target, HEADER):
        raise fail(
            f"{target} exists and was not written by lamina export; use --force to replace it", 1
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(exported.text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {target}: {exc.strerror}", 1) from None
    out.print(f"wrote {target} (app {app.name})", highlight=False, markup=False)
    for row in report:
        out.print(row, highlight=False, markup=False, soft_wrap=True)


def _generated(file: Path, header: str) -> bool:
    try:
        with file.open(encoding="utf-8") as text:
            return text.readline().startswith(header)
    except (OSError, UnicodeDecodeError):
        return False
