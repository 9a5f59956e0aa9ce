"""Handlers whose output the observability tests look for."""

import logging
import os
import signal
import sys

log = logging.getLogger(__name__)  # no logging set up: the runtime's handler, as on Lambda


def talk(event, context):
    print(f"hello from {context.aws_request_id}")
    log.warning("disk almost full")
    log.info("not shown: the root level is WARNING, as on Lambda")
    return {"ok": True}


def print_then_crash(event, context):
    print("last words before the crash")  # no flush: the line is kept all the same
    os._exit(1)


def print_then_killed(event, context):
    print("last words before the kill", file=sys.stderr)
    os.kill(os.getpid(), signal.SIGKILL)
