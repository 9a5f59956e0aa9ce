"""Telemetry: how Lamina reports what happens — platform log formatting and the per-invocation
capture of function output.

It observes; it never changes how an invocation runs. Entry points: `configure_logging`,
`FunctionOutput`.
"""

from __future__ import annotations

from lamina.telemetry.console import FunctionOutput
from lamina.telemetry.logs import configure_logging

__all__ = ["FunctionOutput", "configure_logging"]
