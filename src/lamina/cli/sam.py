"""`lamina sam check`: how each part of an AWS SAM template runs on Lamina, and
`--param NAME=VALUE` parsing shared with `lamina up`/`lamina dev`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lamina.cli._common import fail, out
from lamina.errors import ManifestError

__all__ = ["ParamOpt", "parameters", "sam_app"]

CHECK_EXAMPLE = "Example: lamina sam check sam-app/template.yaml --param Stage=prod"

sam_app = typer.Typer(
    help="AWS SAM templates: what of a template Lamina runs, approximates or ignores.",
    epilog=CHECK_EXAMPLE,
    no_args_is_help=True,
)

ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="SAM template parameter override NAME=VALUE (repeatable), as sam deploy's "
        "--parameter-overrides.",
    ),
]


def parameters(pairs: list[str] | None) -> dict[str, str]:
    """`["Stage=prod", ...]` -> `{"Stage": "prod"}`; exit 2 on a pair without `=`."""
    given: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise fail(f"--param {pair!r}: expected NAME=VALUE, e.g. --param Stage=prod", 2)
        given[name] = value
    return given


@sam_app.command(epilog=CHECK_EXAMPLE)
def check(
    template: Annotated[Path, typer.Argument(help="The SAM template (template.yaml).")],
    param: ParamOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """List every parameter, condition, resource, property and event of a SAM template as
    run, approximated (and how) or ignored (and why). Exit 2 if the template cannot run.

    JWT authorizers fetch the issuer's keys; LAMINA_JWKS_<AuthorizerName> (or LAMINA_JWKS)
    set to a JWKS URL or a PEM public key file uses local keys instead (docs/sam.md)."""
    from lamina.manifest.sam import format_report, load_sam

    try:
        loaded = load_sam(template, parameters=parameters(param))
    except ManifestError as exc:
        raise fail(str(exc), 2) from None
    if as_json:
        entries = [
            {"path": e.path, "verdict": e.verdict, "note": e.note, "line": e.line}
            for e in loaded.report
        ]
        functions = sorted(loaded.spec.functions())
        print(json.dumps({"app": loaded.spec.name, "functions": functions, "report": entries}))
        return
    out.print(f"app {loaded.spec.name}: {template}", highlight=False, markup=False)
    for row in format_report(loaded.report):
        out.print(row, highlight=False, markup=False, soft_wrap=True)
