"""Ray Serve, one replica behind Serve's HTTP proxy on 127.0.0.1:PORT (argv[1])."""

import os
import signal
import sys
import threading

import ray
from ray import serve


@serve.deployment(num_replicas=1)
class Bench:
    def __init__(self, handlers_dir: str, cpu_loops: str) -> None:
        # The replica runs in a Ray worker process: it imports the handlers itself.
        os.environ["BENCH_CPU_LOOPS"] = cpu_loops
        sys.path.insert(0, handlers_dir)
        import busy
        import hello
        import sleepy

        self.handlers = {"/hello": hello.handler, "/io": sleepy.handler, "/cpu": busy.handler}

    def __call__(self, request):
        handler = self.handlers.get(request.url.path)
        if handler is None:
            from starlette.responses import PlainTextResponse

            return PlainTextResponse("not found", status_code=404)
        return handler({}, None)


if __name__ == "__main__":
    ray.init(address="local", include_dashboard=False)  # its own cluster, never a running one
    serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
    app = Bench.bind(os.environ["BENCH_HANDLERS"], os.environ["BENCH_CPU_LOOPS"])
    serve.run(app, route_prefix="/")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # after ray.init, which sets its own
    print("ready", flush=True)
    stop.wait()
    serve.shutdown()
    ray.shutdown()
