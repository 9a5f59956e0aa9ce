"""Lamina: a self-hostable serverless platform for Python microservices.

Function code imports this package for what it needs at run time (`invoke`, `invoke_async`,
`send`, `publish`, `traceparent`, `table`, `sql`), the error root `LaminaError` and the table
errors (`ConditionFailed`, ...). The platform's own API is `lamina.control`.
"""

from __future__ import annotations

from lamina.errors import ConditionFailed, LaminaError, TableError, TableNotFound
from lamina.functions import invoke, invoke_async, publish, send, traceparent
from lamina.tables import sql, table

__all__ = [
    "ConditionFailed",
    "LaminaError",
    "TableError",
    "TableNotFound",
    "__version__",
    "invoke",
    "invoke_async",
    "publish",
    "send",
    "sql",
    "table",
    "traceparent",
]

__version__ = "0.1.0"
