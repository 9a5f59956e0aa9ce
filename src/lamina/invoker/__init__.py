"""Invoker: routes each invocation to an instance of its function — an idle one, a new one, or
a bounded wait — and throttles past that. Owns in-flight accounting per function.

It asks `scaling` what to start and stop and asks the executor to do it; it never decides the
numbers itself and never talks to a process directly. Entry points: `Invoker`, `FunctionPool`.
"""

from __future__ import annotations

from lamina.invoker.invoker import Invoker
from lamina.invoker.pool import FunctionPool, InvocationOutcome, PoolConfig, PoolStats

__all__ = ["FunctionPool", "InvocationOutcome", "Invoker", "PoolConfig", "PoolStats"]
