"""Handlers for the control-plane tests: each line a handler appends names the plane whose
instance ran it (its gateway URL), so a test sees which plane did what."""

import json
import os
import time

import lamina


def _append(variable, entry):
    entry["plane"] = os.environ["LAMINA_API_URL"]
    with open(os.environ[variable], "a") as f:
        f.write(json.dumps(entry) + "\n")


def record(event, context):
    """An async invocation: slow while SLOW_FILE exists, so many are pending at a SIGKILL."""
    if os.path.exists(os.environ["SLOW_FILE"]):
        time.sleep(0.2)
    _append("DELIVERIES_FILE", {"id": context.aws_request_id})
    return {"ok": True}


def consume(event, context):
    """A queue batch, as SQS delivers it."""
    for record in event["Records"]:
        _append("DELIVERIES_FILE", {"id": record["body"]})
    return {}


def tick(event, context):
    """A scheduled event: its tick time and id."""
    _append("TICKS_FILE", {"time": event["time"], "id": event["id"]})


def hold(event, context):
    """Keep the instance busy for `s` seconds; log a line with `marker`."""
    print(f"holding {event.get('marker', '')}")
    time.sleep(event.get("s", 0))
    return {
        "pid": os.getpid(),
        "plane": os.environ["LAMINA_API_URL"],
        "admin": os.environ["LAMINA_ADMIN_URL"],  # tells planes on one port apart
    }


def fail(event, context):
    raise RuntimeError(f"failing on purpose: {event}")


def table_op(event, context):
    table = lamina.table("items")
    if event["op"] == "put":
        table.put(event["item"])
        return {"ok": True}
    return table.get(event["key"])
