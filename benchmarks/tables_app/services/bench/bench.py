"""Runs `n` table operations of one kind and reports how long they took (perf_counter)."""

import time

import lamina

PARTITIONS = 10


def item(i):
    return {"pk": f"u{i % PARTITIONS}", "sk": f"{i:08d}", "n": i, "name": f"item {i}", "ok": True}


def loop(event, context):
    table = lamina.table("items")
    op, n = event["op"], event["n"]
    if op == "put":
        items = [item(i) for i in range(n)]
        start = time.perf_counter()
        for it in items:
            table.put(it)
    elif op == "get":
        keys = [(f"u{i % PARTITIONS}", f"{i:08d}") for i in range(n)]
        start = time.perf_counter()
        for key in keys:
            if table.get(key) is None:
                raise AssertionError(f"missing {key}")
    elif op == "query":
        start = time.perf_counter()
        for i in range(n):
            if len(table.query(f"u{i % PARTITIONS}", limit=10).items) != 10:
                raise AssertionError("short page")
    else:
        raise ValueError(op)
    return {"seconds": time.perf_counter() - start}
