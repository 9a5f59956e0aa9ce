import os
import sys

from chalice import Chalice

sys.path.insert(0, os.environ["BENCH_HANDLERS"])
import busy
import hello
import sleepy

app = Chalice(app_name="bench")


@app.route("/hello")
def hello_route():
    return hello.handler({}, None)


@app.route("/io")
def io_route():
    return sleepy.handler({}, None)


@app.route("/cpu")
def cpu_route():
    return busy.handler({}, None)
