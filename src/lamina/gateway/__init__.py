"""Gateway: the ASGI app on the gateway port. Matches HTTP API routes, maps requests to API
Gateway events (payload 2.0 or REST 1.0) and results back, and serves the Lambda Invoke API.

It never runs function code or decides scaling; it hands invocations to the invoker. Entry
point: `lamina.gateway.app.GatewayApp`; the pure mapping lives in `routes`, `events` and
`responses`. (This package imports nothing itself: instances import `events`, to build the
events the gateway sends them in compact form, and must not pay for the rest.)
"""
