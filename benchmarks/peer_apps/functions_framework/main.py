import os
import sys

sys.path.insert(0, os.environ["BENCH_HANDLERS"])
import busy
import hello
import sleepy

HANDLERS = {"/hello": hello.handler, "/io": sleepy.handler, "/cpu": busy.handler}


def dispatch(request):
    """The one target: a Flask request, answered by the handler its path names."""
    handler = HANDLERS.get(request.path)
    if handler is None:
        return ("not found", 404)
    return handler({}, None)
