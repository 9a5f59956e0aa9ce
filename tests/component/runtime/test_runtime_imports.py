"""What an instance's runtime imports: every zygote (one per function) holds it, so it stays
small, although instances now build the API Gateway events the gateway sends them in compact
form with the gateway's own code."""

from __future__ import annotations

import subprocess
import sys


def test_the_runtime_takes_the_event_builder_without_the_gateway_or_the_manifest() -> None:
    code = "import sys, lamina.runtime.instance; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    loaded = set(out.stdout.split())
    assert "lamina.gateway.events" in loaded
    heavy = {"lamina.gateway.app", "lamina.gateway.routes", "lamina.manifest", "yaml"}
    assert not heavy & loaded
    assert not {m for m in loaded if m.startswith(("pydantic", "starlette", "uvicorn", "httpx"))}
