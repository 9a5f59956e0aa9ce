"""Handlers the Invoke API tests call through boto3; the `beacon` ones report to the test."""

import json
import socket
import time


def echo(event, context):
    custom = context.client_context.custom if context.client_context else None
    return {"event": event, "request_id": context.aws_request_id, "custom": custom}


def fail(event, context):
    raise ValueError(f"cannot handle {event['item']}")


def shout(event, context):
    print(f"shouting {event['say']}")
    return "done"


def nap(event, context):
    time.sleep(event["seconds"])
    return "woke up"


def beacon(event, context):
    """Tells the test's beacon server it runs, then waits until the test answers."""
    with socket.create_connection(("127.0.0.1", event["port"]), timeout=8) as conn:
        conn.sendall(json.dumps({"request_id": context.aws_request_id}).encode() + b"\n")
        if event.get("hold"):
            conn.recv(1)
    return {"request_id": context.aws_request_id}
