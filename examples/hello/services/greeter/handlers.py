"""Handlers written exactly as for AWS Lambda (Python runtime)."""

import asyncio
import base64
import json
import os
import time

STARTED = time.time()  # module-level code runs once per instance: the cold start


def hello(event, context):
    name = (event.get("pathParameters") or {}).get("name") or (
        event.get("queryStringParameters") or {}
    ).get("name", "world")
    print(f"greeting {name}")
    return {
        "message": f"{os.environ['GREETING']}, {name}!",
        "request_id": context.aws_request_id,
        "instance_age_s": round(time.time() - STARTED, 3),
    }


def echo(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "method": event["httpMethod"],
                "path": event["path"],
                "proxy": event["pathParameters"]["proxy"],
                "query": event["multiValueQueryStringParameters"],
                "body": event["body"],
                "memory_mb": context.memory_limit_in_mb,
            }
        ),
    }


async def slow(event, context):
    """An async handler: with concurrency 8, one instance serves eight of these at once."""
    raw = event.get("body") or "{}"
    if event.get("isBase64Encoded"):  # HTTP APIs base64 bodies that are not declared as text
        raw = base64.b64decode(raw)
    body = json.loads(raw)
    await asyncio.sleep(float(body.get("seconds", 0.5)))
    return {"slept": body.get("seconds", 0.5), "remaining_ms": context.get_remaining_time_in_millis()}
