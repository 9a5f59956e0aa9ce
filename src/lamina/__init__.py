"""Lamina: a self-hostable serverless platform for Python microservices.

Function code imports this package for what it needs at run time (`invoke`, `invoke_async`,
`send`, `publish`, `traceparent`) and the error root `LaminaError`. The platform's own API is
`lamina.control`.
"""

from __future__ import annotations

from lamina.errors import LaminaError
from lamina.functions import invoke, invoke_async, publish, send, traceparent

__all__ = [
    "LaminaError",
    "__version__",
    "invoke",
    "invoke_async",
    "publish",
    "send",
    "traceparent",
]

__version__ = "0.1.0"
