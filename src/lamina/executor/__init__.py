"""Executor: starts, talks to and stops function instances, and enforces their limits.

Mechanism only: it never decides how many instances there should be (that is `scaling`),
and never routes invocations (that is `invoker`). Backends sit behind `ExecutorBackend`;
`create_backend("local")` returns the process backend and `create_backend("ray")` the Ray actor
backend, each loaded lazily by name (Ray is an optional extra).
"""

from __future__ import annotations

from typing import Any

from lamina.executor.types import (
    INIT_TIMEOUT_S,
    ExecutorBackend,
    FunctionConfig,
    Instance,
    InvocationRequest,
    InvocationResult,
    LogSink,
    NotStarted,
)

__all__ = [
    "INIT_TIMEOUT_S",
    "ExecutorBackend",
    "FunctionConfig",
    "Instance",
    "InvocationRequest",
    "InvocationResult",
    "LogSink",
    "NotStarted",
    "create_backend",
]


def create_backend(name: str, **options: Any) -> ExecutorBackend:
    """The backend called `name`; its module is imported only when chosen."""
    if name == "local":
        from lamina.executor.local import LocalBackend

        return LocalBackend(**options)
    if name == "ray":
        from lamina.executor.ray import RayBackend

        return RayBackend(**options)
    raise ValueError(f"unknown executor backend {name!r}; expected 'local' or 'ray'")
