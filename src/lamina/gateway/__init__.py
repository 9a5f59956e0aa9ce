"""Gateway: the ASGI app on the gateway port. Matches HTTP API routes, maps requests to API
Gateway events (payload 2.0 or REST 1.0) and results back, and serves the Lambda Invoke API.

It never runs function code or decides scaling; it hands invocations to the invoker. Entry
point: `GatewayApp`; the pure mapping lives in `routes`, `events` and `responses`.
"""

from __future__ import annotations

from lamina.gateway.app import GatewayApp, RouteTarget

__all__ = ["GatewayApp", "RouteTarget"]
