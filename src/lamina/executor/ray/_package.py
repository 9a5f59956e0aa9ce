"""A service's code folder as a Ray runtime-environment package (`gcs://_ray_pkg_<hash>.zip`).

Ray accepts a local `working_dir` only for a whole job (`ray.init`); an actor's runtime
environment needs a URI, so the backend uploads each service folder once, content-addressed,
through the same helpers `ray.init` uses (Ray's private packaging module: kept here, in one place).
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from typing import Any

__all__ = ["EXCLUDES", "ensure_uploaded", "package_uri"]

# Never shipped: the platform's state folder (SQLite store, tokens), caches, virtualenvs.
EXCLUDES = [".lamina", "__pycache__", ".venv", ".git"]


def package_uri(service_path: str) -> str:
    """The content-addressed URI of `service_path` (hashes every file: call it off the loop)."""
    from ray._private.runtime_env.packaging import get_uri_for_directory

    return str(get_uri_for_directory(service_path, **_options(get_uri_for_directory)))


def ensure_uploaded(uri: str, service_path: str) -> None:
    """Upload `service_path` as `uri` unless the cluster has it (Ray may drop packages that no
    actor has used for a while); pins it for Ray's grace period either way."""
    from ray._private.runtime_env.packaging import upload_package_if_needed

    with tempfile.TemporaryDirectory(prefix="lamina-ray-") as scratch:
        upload_package_if_needed(uri, scratch, service_path, **_options(upload_package_if_needed))


def _options(helper: Callable[..., Any]) -> dict[str, Any]:
    """Excludes, and .gitignore respected where this Ray version knows that option."""
    options: dict[str, Any] = {"excludes": EXCLUDES}
    if "include_gitignore" in inspect.signature(helper).parameters:
        options["include_gitignore"] = True
    return options
