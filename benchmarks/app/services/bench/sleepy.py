import time


def handler(event, context):
    time.sleep(0.02)  # I/O-bound: waits 20 ms, as a handler calling a slow service would
    return {"message": "slept 20 ms"}
