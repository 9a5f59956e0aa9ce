"""Handlers for the asynchronous-invocation tests: each records its attempts in a file."""

import json
import os


def _record(event, context, outcome):
    with open(os.environ["ATTEMPTS_FILE"], "a") as f:
        f.write(
            json.dumps({"request_id": context.aws_request_id, "event": event, "outcome": outcome})
            + "\n"
        )


def record(event, context):
    _record(event, context, "ok")
    return {"ok": True}


def always_fail(event, context):
    _record(event, context, "raised")
    raise ValueError(f"attempt failed for {event.get('n')}")


def fire_and_forget(event, context):
    """Function code queueing another function's invocation with lamina.invoke_async."""
    import lamina

    return {"queued": lamina.invoke_async("svc.record", {"from": context.aws_request_id})}
