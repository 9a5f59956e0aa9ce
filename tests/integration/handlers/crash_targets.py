"""A handler for the crash-safety tests: records every delivery; slow while SLOW_FILE exists,
so that thousands of accepted events are still pending when the test kills the platform."""

import os
import time


def record(event, context):
    if os.path.exists(os.environ["SLOW_FILE"]):
        time.sleep(0.05)
    with open(os.environ["DELIVERIES_FILE"], "a") as f:
        f.write(f"{context.aws_request_id} {os.getpid()}\n")
    return {"ok": True}
