"""The handler of the node-loss-under-load test: every invocation does a little work; queued
and asynchronous ones append to WORK_LOG when they start and when they are done, with the
event's id and the process that ran it."""

import json
import os
import time


def _record(entry):
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(os.environ["WORK_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:  # one write on an O_APPEND descriptor: lines of concurrent instances never interleave
        os.write(fd, line)
    finally:
        os.close(fd)


def work(event, context):
    if "requestContext" in event:  # a synchronous HTTP request
        time.sleep(0.1)
        return {"pid": os.getpid()}
    if "Records" in event:  # a queue batch: the test's bodies are its ids
        ids = [record["body"] for record in event["Records"]]
    else:  # an asynchronous invocation
        ids = [context.aws_request_id]
    for event_id in ids:
        _record({"id": event_id, "pid": os.getpid(), "done": False})
    time.sleep(0.3)  # long enough for the test to kill the node while this runs
    for event_id in ids:
        _record({"id": event_id, "pid": os.getpid(), "done": True})
    return {"pid": os.getpid()}
