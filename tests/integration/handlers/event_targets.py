"""Handlers for the schedule and dead-letter tests: each records what it received in a file."""

import json
import os


def _append(event, context, outcome):
    line = json.dumps({"request_id": context.aws_request_id, "event": event, "outcome": outcome})
    with open(os.environ["EVENTS_FILE"], "a") as f:
        f.write(line + "\n")


def record(event, context):
    _append(event, context, "ok")
    return {"ok": True}


def fails_until_fixed(event, context):
    """Raises until the file FIXED_FILE exists, as a bug fixed before a redrive."""
    if not os.path.exists(os.environ["FIXED_FILE"]):
        _append(event, context, "raised")
        raise RuntimeError(f"not fixed yet for {event.get('n')}")
    _append(event, context, "ok")
    return {"ok": True}
