"""`lamina dashboard`: open the web dashboard of a running platform, signed in."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from lamina.cli._common import AdminUrlOpt, TokenOpt, admin_call, fail, out, target

__all__ = ["DASHBOARD_EXAMPLE", "dashboard"]

DASHBOARD_EXAMPLE = "Example: lamina dashboard examples/hello   (or --no-open to print the link)"


def dashboard(
    app_dir: Annotated[Path, typer.Argument(help="App folder of the running platform.")] = Path(
        "."
    ),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
    no_open: Annotated[
        bool, typer.Option("--no-open", help="Only print the link; do not start a browser.")
    ] = False,
) -> None:
    """Open the web dashboard (the admin port's /) in a browser, signed in with the admin token.

    The link carries the token in its #fragment, which browsers never send to a server."""
    where = target(app_dir, "-", admin_url, token)
    if not where.token:
        raise fail(
            "no admin token: pass --token, set LAMINA_ADMIN_TOKEN, or run this next to the app"
            " (APP_DIR/.lamina/admin-token)"
        )
    admin_call(where, "GET", "/status")  # running, and the token works: a clear error if not
    url = f"{where.admin_url}/#token={quote(where.token, safe='')}"
    out.print(url, highlight=False, soft_wrap=True)
    if not no_open and not webbrowser.open(url):
        out.print("No browser found here: open the link above in one.", highlight=False)
