"""Handlers for tests/integration/test_gateway_security.py."""

import json
import os


def echo(event, context):
    """What the function sees of its caller: the authorizer part of the request context."""
    return {"authorizer": event["requestContext"].get("authorizer")}


def authorize(event, context):
    """A Lambda authorizer (simple responses): allows `Authorization: let-me-in`."""
    with open(os.environ["CALLS_FILE"], "a") as f:
        f.write(json.dumps({"type": event["type"], "identity": event["identitySource"]}) + "\n")
    token = event["headers"].get("authorization")
    if token == "explode":
        raise RuntimeError("authorizer bug")
    return {"isAuthorized": token == "let-me-in", "context": {"user": "u-7", "tier": "gold"}}
