"""The manifest: loads and checks `lamina.yaml` into typed, immutable models (`AppSpec` down to
`Trigger`). It only reads files; it never imports handler code or starts anything, and every
problem is a `ManifestError` naming the file, key path and line. Entry points: `load_app`,
`parse_app`.
"""

from __future__ import annotations

from lamina.manifest.loader import load_app, parse_app
from lamina.manifest.models import (
    AppSpec,
    AsyncSpec,
    CorsSpec,
    FunctionAuthorizer,
    FunctionSpec,
    GatewaySpec,
    HttpTrigger,
    JwtSpec,
    QueueTrigger,
    RateLimitSpec,
    ScheduleTrigger,
    ServiceSpec,
    TableSpec,
    TopicTrigger,
    Trigger,
)
from lamina.manifest.routekey import RouteKey

__all__ = [
    "AppSpec",
    "AsyncSpec",
    "CorsSpec",
    "FunctionAuthorizer",
    "FunctionSpec",
    "GatewaySpec",
    "HttpTrigger",
    "JwtSpec",
    "QueueTrigger",
    "RateLimitSpec",
    "RouteKey",
    "ScheduleTrigger",
    "ServiceSpec",
    "TableSpec",
    "TopicTrigger",
    "Trigger",
    "load_app",
    "parse_app",
]
