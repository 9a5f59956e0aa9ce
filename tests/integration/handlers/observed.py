"""Handlers whose output the observability tests look for."""

import logging
import os

logging.basicConfig(level=logging.INFO)


def talk(event, context):
    print(f"hello from {context.aws_request_id}")
    logging.warning("disk almost full")
    return {"ok": True}


def print_then_crash(event, context):
    print("last words before the crash", flush=True)
    os._exit(1)
