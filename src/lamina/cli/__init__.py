"""The `lamina` command. Thin: parses arguments, calls `lamina.control` or a running
platform's APIs, prints. The only place that exits the process. Entry point: `main`.
"""

from __future__ import annotations

from lamina.cli.main import app, main

__all__ = ["app", "main"]
