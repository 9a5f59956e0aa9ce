"""Function code of a three-service app for tracing: `front` calls `orders`, which publishes to
a topic, sends to a queue and invokes asynchronously; `mail` consumes all three. Every function
appends what it saw of its trace context to TRACE_LOG."""

import asyncio
import json
import os

import lamina


def _note(name, **seen):
    entry = {
        "function": name,
        "traceparent": lamina.traceparent(),
        "xray": os.environ.get("_X_AMZN_TRACE_ID"),
        **seen,
    }
    with open(os.environ["TRACE_LOG"], "a") as f:
        f.write(json.dumps(entry) + "\n")


def front(event, context):
    _note("front")
    placed = lamina.invoke("orders.place", {"order": event["queryStringParameters"]["order"]})
    return {"statusCode": 200, "body": json.dumps(placed)}


def place(event, context):
    _note("place")
    order = event["order"]
    lamina.publish("order-placed", {"order": order})
    lamina.send("receipts", {"order": order})
    lamina.invoke_async("mail.audit", {"order": order})
    return {"placed": order}


def notify(event, context):
    _note("notify")


def receipt(event, context):
    record = event["Records"][0]
    _note("receipt", aws_trace_header=record["attributes"].get("AWSTraceHeader"))


def audit(event, context):
    _note("audit")


async def concurrent(event, context):
    """Async, several at once: each invocation sees its own context across an await."""
    before = lamina.traceparent()
    await asyncio.sleep(0.05)
    return {"before": before, "after": lamina.traceparent()}
