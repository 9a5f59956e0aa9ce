"""What a zygote running in a service's virtual environment sees of the platform's install.

The zygote runs with the environment's own `python`, so its site-packages are the service's.
Two folders of links add what Lamina's runtime needs and nothing else:
- `lamina/` holds only the `lamina` package and goes on PYTHONPATH, ahead of site-packages:
  instances always speak the platform's own protocol, even if the service installed a Lamina;
- `libs/` holds the distributions Lamina's runtime imports (orjson; psycopg for PostgreSQL
  tables) and goes last on sys.path: a service's own copy of one of them wins.
Which distributions those are is asked of the platform's interpreter once (`build`), by
importing the runtime's modules in a fresh process and seeing what else got imported.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

import lamina
from lamina.errors import PlatformError

__all__ = ["BOOT", "RuntimePath", "build_runtime_path"]

# The zygote's command line in an environment: `python -c BOOT LIBS_DIR`.
BOOT = (
    "import sys; sys.path.append(sys.argv.pop(1)); from lamina.runtime.zygote import main; main()"
)

# What instances import of Lamina: the runtime, the function SDK and both table backends.
_RUNTIME_MODULES = (
    "lamina",
    "lamina.runtime.zygote",
    "lamina.store._tables_sqlite",
    "lamina.store._tables_postgres",
)

_PROBE = """
import importlib, importlib.metadata as md, json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
tops = {n.partition(".")[0] for n in set(sys.modules) - before}
tops -= set(sys.stdlib_module_names) | {"lamina"}
owners = md.packages_distributions()
paths = set()
for top in tops:
    for name in owners.get(top, ()):
        dist = md.distribution(name)
        for file in dist.files or ():
            first = file.parts[0]
            if first not in ("..", "__pycache__") and not first.endswith(".pth"):
                paths.add(str(dist.locate_file(first)))
print(json.dumps(sorted(paths)))
"""


@dataclass(frozen=True, slots=True)
class RuntimePath:
    lamina: str  # folder holding only the `lamina` package: first on the path
    libs: str  # folder of the runtime's third-party distributions: last on the path


async def build_runtime_path(dest: Path) -> RuntimePath:
    """Link Lamina and its runtime's libraries under `dest` (a folder of the backend's own)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PROBE,
        *_RUNTIME_MODULES,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0:
        raise PlatformError(
            f"cannot find the libraries of Lamina's runtime: {err.decode(errors='replace')}"
        )
    first, last = dest / "lamina", dest / "libs"
    first.mkdir(parents=True, exist_ok=True)
    last.mkdir(parents=True, exist_ok=True)
    (first / "lamina").symlink_to(os.path.dirname(os.path.abspath(lamina.__file__)))
    for path in orjson.loads(out):
        link = last / os.path.basename(path)
        if not link.exists():
            link.symlink_to(path)
    return RuntimePath(str(first), str(last))
