"""Building one service environment for real: with pip when uv is not used, and with uv for
two platforms that start together on one cache (one builds, the other waits and reuses)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from lamina.control.venvs import MARKER, VenvEvent, ensure_venv, find_uv
from lamina.errors import RequirementsError

pytestmark = pytest.mark.timeout(180)


def _six_in(venv: Path) -> str:
    done = subprocess.run(
        [venv / "bin" / "python", "-c", "import six; print(six.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


async def test_without_uv_the_environment_is_built_with_venv_and_pip(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.16.0\n")
    events: list[VenvEvent] = []

    cache = tmp_path / "cache"
    venv = await ensure_venv(
        "a", requirements, cache, shown="requirements.txt", uv=None, progress=events.append
    )

    assert [(e.state, e.installer) for e in events] == [("building", "pip"), ("built", "pip")]
    assert venv.parent == tmp_path / "cache" and (venv / MARKER).is_file()
    assert _six_in(venv) == "1.16.0"


async def test_pip_errors_name_the_service_the_file_and_what_pip_said(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("lamina-no-such-package-0xdead==1.0\n")

    with pytest.raises(RequirementsError) as info:
        await ensure_venv(
            "billing", requirements, tmp_path / "cache", shown="billing/requirements.txt", uv=None
        )

    assert str(info.value).startswith(
        "service billing: cannot install billing/requirements.txt: `python -m pip install"
    )
    assert "lamina-no-such-package-0xdead" in info.value.output
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".lock"]  # no folder kept


async def test_two_builds_of_one_key_at_once_build_it_once(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.16.0\n")
    events: list[VenvEvent] = []
    uv = find_uv()
    assert uv is not None, "the uv package is a dependency of lamina"

    builds = [
        ensure_venv(
            name, requirements, tmp_path / "cache", shown="r.txt", uv=uv, progress=events.append
        )
        for name in ("a", "b")
    ]
    first, second = await asyncio.gather(*builds)

    assert first == second
    assert sorted(e.state for e in events) == ["building", "built", "reused"]
    assert _six_in(first) == "1.16.0"
