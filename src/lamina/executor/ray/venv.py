"""A service's virtual environment on the Ray node that runs an instance's actor.

The platform builds each service's environment on its own machine (`lamina.control.venvs`). A
node sees that folder only when it is the same machine (or shares the filesystem); elsewhere,
the actor builds the same environment on its node, with the same builder and cache key, from
the requirements file that travelled with the service's code (the runtime environment's
`working_dir`), into the node's cache: later instances on that node reuse it.
"""

from __future__ import annotations

import os
from pathlib import Path

from lamina.control.venvs import (
    MARKER,
    default_venv_dir,
    ensure_venv,
    find_uv,
    python_tag,
    requirement_files,
    venv_key,
)
from lamina.errors import PlatformError
from lamina.executor.types import FunctionConfig

__all__ = ["node_venv", "shipped_requirements"]


def shipped_requirements(fn: FunctionConfig) -> str | None:
    """`fn`'s requirements file relative to its service folder, the only part of the app that
    reaches the nodes; a PlatformError when it, or a file it includes, lies outside."""
    if fn.requirements is None:
        return None
    root = Path(fn.service_path)
    requirements = Path(fn.requirements)
    for path in requirement_files(requirements):
        if not path.is_relative_to(root):
            raise PlatformError(
                f"{fn.id}: on the ray executor a service's requirements travel with its code, "
                f"so {path} (from requirements: {requirements}) must be inside the service "
                f"folder {root}"
            )
    return requirements.relative_to(root).as_posix()


async def node_venv(service: str, code: Path, requirements: str, platform_venv: str | None) -> Path:
    """The environment for `code`/`requirements` on this node: the platform's own when this
    node sees it (same key, complete), else the node's cached one, built now if missing
    (RequirementsError when it cannot be built)."""
    file = code / requirements
    if platform_venv is not None:
        built = Path(platform_venv)
        if built.name == venv_key(file, python_tag()) and (built / MARKER).is_file():
            return built
    return await ensure_venv(
        service, file, default_venv_dir(os.environ), shown=requirements, uv=find_uv()
    )
