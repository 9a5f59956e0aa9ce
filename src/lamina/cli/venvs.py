"""Status lines for services' environments while `lamina up` / `lamina dev` builds them."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.status import Status

from lamina.control.venvs import VenvEvent

__all__ = ["VenvStatus"]


class VenvStatus:
    """Shows each environment step on `console`: a spinner while one builds (a line when the
    output is not a terminal), then what was built or reused and where."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._spinner: Status | None = None

    def __call__(self, event: VenvEvent) -> None:
        what = f"service [bold]{escape(event.service)}[/]"
        source = escape(event.requirements)
        if event.state == "building":
            text = f"installing {source} for {what} with {event.installer} …"
            if self._console.is_terminal:
                self._spinner = self._console.status(text)
                self._spinner.start()
            else:
                self._console.print(f"  {text}", highlight=False, soft_wrap=True)
            sys.stdout.flush()
            return
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None
        where = escape(str(event.path))
        if event.state == "built":
            line = f"[green]✓[/] {what}: environment built from {source} in {event.elapsed_s:.1f} s"
        elif event.state == "reused":
            line = f"[green]✓[/] {what}: environment reused for {source}"
        else:
            line = f"[bold red]✗[/] {what}: environment not built from {source} (error below)"
            where = ""
        self._console.print(
            f"{line}  ({where})" if where else line, highlight=False, soft_wrap=True
        )
        sys.stdout.flush()
