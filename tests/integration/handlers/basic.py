"""Handlers the integration tests run as real functions."""

import asyncio
import ctypes
import json
import os
import sys
import time

INIT_PID = os.getpid()
INIT_COUNT_FILE = os.environ.get("INIT_COUNT_FILE")
if INIT_COUNT_FILE:  # lets a test count how often module-level code ran
    with open(INIT_COUNT_FILE, "a") as f:
        f.write(f"{os.getpid()}\n")
print(f"init in {os.getpid()}")


def _body(event):
    return json.loads(event["body"]) if event.get("body") else event


def hello(event, context):
    return {"pid": os.getpid(), "request_id": context.aws_request_id, "init_pid": INIT_PID}


def status(event, context):
    """Answers with the status and body the query string asks for (`?status=204&body=x`)."""
    query = event.get("queryStringParameters") or {}
    return {"statusCode": int(query.get("status", "200")), "body": query.get("body", "")}


def whoami(event, context):
    names = [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_REGION",
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "SERVICE_VAR",
        "FUNCTION_VAR",
        "SHARED_VAR",
    ]
    return {
        "env": {n: os.environ.get(n) for n in names},
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "client_context": context.client_context.custom if context.client_context else None,
            "identity": context.identity.cognito_identity_id,
        },
        "cwd": os.getcwd(),
        "pid": os.getpid(),
    }


def chaos(event, context):
    """Misbehaves as the request asks: sleep, crash, segfault, allocate, raise, print."""
    body = _body(event)
    if "print" in body:
        print(body["print"])
        print("to stderr", file=sys.stderr)
    if "sleep" in body:
        time.sleep(body["sleep"])
    if body.get("exit") is not None:
        os._exit(body["exit"])
    if body.get("segfault"):
        ctypes.string_at(0)
    if body.get("allocate_mb"):
        block = bytearray(body["allocate_mb"] * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
    if body.get("raise"):
        raise RuntimeError(body["raise"])
    return {"pid": os.getpid(), "ok": True}


async def slow_async(event, context):
    body = _body(event)
    await asyncio.sleep(body.get("sleep", 0.3))
    return {"pid": os.getpid(), "request_id": context.aws_request_id}


def call_other(event, context):
    """Invokes another function through lamina.invoke, as function code does."""
    import lamina

    result = lamina.invoke(_body(event)["target"], {"from": context.function_name})
    return {"called": result}
