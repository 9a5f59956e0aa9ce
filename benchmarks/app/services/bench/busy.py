import os

# How many loops make about 5 ms of pure-Python work on this machine: measured once by
# benchmarks/compare.py (`calibrate`) and handed to every server in BENCH_CPU_LOOPS, so every
# peer runs exactly the same work.
LOOPS = int(os.environ.get("BENCH_CPU_LOOPS", "20000"))


def work(loops: int) -> int:
    total = 0
    for i in range(loops):
        total = (total + i * i) % 1_000_003
    return total


def handler(event, context):
    return {"message": "worked", "result": work(LOOPS)}
