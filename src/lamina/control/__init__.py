"""Control: wires every component into one `Platform`, serves the admin API and owns the
lifecycle — start, serve until a signal, drain in-flight work, stop.

It composes; it holds no policy of its own. Entry points: `Platform`, `PlatformOptions`,
`running`.
"""

from __future__ import annotations

from lamina.control.options import PlatformOptions
from lamina.control.platform import Platform, running

__all__ = ["Platform", "PlatformOptions", "running"]
