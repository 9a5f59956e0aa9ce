"""The CLI's client commands (`lamina logs`, `invoke`, `--help`, ...) start without loading the
platform: it is half a second of imports that only `lamina up` and `lamina dev` need."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    return set(out.stdout.split())


def test_the_cli_loads_without_the_platform_and_its_gateway() -> None:
    loaded = _loaded_after("import lamina.cli.main")
    assert "lamina.cli.deploy" in loaded  # the module that builds bundles is there...
    assert "lamina.control.bundle" in loaded
    assert not {"lamina.control.platform", "lamina.gateway.app"} & loaded  # ...not the platform


def test_the_package_still_hands_out_the_platform_when_asked() -> None:
    loaded = _loaded_after(
        "from lamina.control import Platform, PlatformOptions, running; "
        "assert Platform.__name__ == 'Platform' and callable(running)"
    )
    assert "lamina.control.platform" in loaded
