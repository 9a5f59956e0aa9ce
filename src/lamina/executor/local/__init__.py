"""The local executor backend: instances are OS processes forked from a per-function zygote."""

from __future__ import annotations

from lamina.executor.local.backend import LocalBackend

__all__ = ["LocalBackend"]
