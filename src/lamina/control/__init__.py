"""Control: wires every component into one `Platform`, serves the admin API and owns the
lifecycle — start, serve until a signal, drain in-flight work, stop.

It composes; it holds no policy of its own. Entry points: `Platform`, `PlatformOptions`,
`running`.

They are imported when first used (PEP 562): the CLI's client commands import modules of this
package (`bundle`, to build a deploy) and should not pay for the whole platform (half a
second) to answer `lamina logs` or `--help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lamina.control.options import PlatformOptions
    from lamina.control.platform import Platform, running

__all__ = ["Platform", "PlatformOptions", "running"]


def __getattr__(name: str) -> Any:
    if name == "PlatformOptions":
        from lamina.control.options import PlatformOptions

        return PlatformOptions
    if name in ("Platform", "running"):
        from lamina.control import platform

        return getattr(platform, name)
    raise AttributeError(f"module 'lamina.control' has no attribute {name!r}")
