"""Function code that uses its service's tables through lamina.table."""

import os
import time

import lamina


def op(event, context):
    """Run `lamina.table(event["table"]).<op>(*args, **kwargs)`; pages come back as JSON."""
    table = lamina.table(event["table"])
    result = getattr(table, event["op"])(*event.get("args", []), **event.get("kwargs", {}))
    return result.to_json() if hasattr(result, "to_json") else result


def incr(event, context):
    """One atomic increment, held a little so that concurrent calls need several instances."""
    time.sleep(event.get("hold", 0.05))
    item = lamina.table("counters").update("hits", add={"n": 1}, if_exists=False)
    return {"n": item["n"], "pid": os.getpid()}
